# syntax=docker/dockerfile:1
# A stand-in for otel/opentelemetry-collector-contrib where no registry is reachable
# (make compose-smoke; docker-compose.smoke.yml picks it with RELAY_SMOKE_OTEL_COLLECTOR_IMAGE):
# an OTLP/HTTP sink on :4318 that answers every export with success and notes it as a JSON line
# in /traces/stand-in.jsonl. Like the real collector it runs as uid 10001 on a read-only root
# filesystem and writes only to the traces volume, which is what the smoke checks of it.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
FROM ${PYTHON_IMAGE}
COPY otlp-sink.py /usr/local/lib/otlp-sink.py
USER 10001:10001
EXPOSE 4318
HEALTHCHECK NONE
CMD ["python", "/usr/local/lib/otlp-sink.py"]
