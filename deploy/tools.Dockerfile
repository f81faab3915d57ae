# syntax=docker/dockerfile:1
# The operator tools' image: relay-ops (the `relay` CLI: bootstrap, admin, dlq) with the
# services it runs, and moto server; never the devkit (tests and benchmarks only). docker-compose.yml runs it as `moto` (the local
# AWS) and `init` (a one-shot `relay bootstrap`). Build from the repository root:
#   docker build -f deploy/tools.Dockerfile -t relay-tools .

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# The uv release that writes this repository's uv.lock (scripts/ensure-uv installs it from PyPI).
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# watchfiles (uvicorn[standard]'s --reload) is for development only: never installed here.
# Third-party dependencies from the lock file alone: this layer changes only with uv.lock.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package relay-ops \
      --no-install-package watchfiles
# The workspace stays in its source layout (an editable install): `relay` reads
# contracts/routing.yaml beside its source (ops/src/relay_ops/routing.py).
COPY contracts contracts
COPY shared shared
COPY services services
COPY ops ops
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --package relay-ops \
      --no-install-package watchfiles

FROM ${PYTHON_IMAGE}
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="relay-tools" \
      org.opencontainers.image.description="Relay operator tools: the relay CLI and moto server." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.vendor="Relay"
# /var/lib/relay/traces: owned by the same uid as the OpenTelemetry collector's (10001), so the
# compose file's traces volume, first mounted here by `init`, is writable by the collector.
RUN groupadd --system --gid 10001 relay \
    && useradd --system --uid 10001 --gid relay --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin relay \
    && mkdir -p /var/lib/relay/traces \
    && chown relay:relay /var/lib/relay/traces
COPY --from=build /app /app
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
USER 10001:10001
# A one-shot command or moto server: their health is checked where they run (docker-compose.yml).
HEALTHCHECK NONE
CMD ["relay", "--help"]
