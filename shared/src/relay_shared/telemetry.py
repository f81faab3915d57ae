"""OpenTelemetry for a service process: traces with X-Ray-compatible ids, W3C and X-Ray
propagation, metrics, and the contrib instrumentation for FastAPI, httpx, psycopg, redis and
aiobotocore (docs/observability.md, ADR 0009).

Where the data goes, in this order:

- ``RELAY_OTLP_ENDPOINT`` set: OTLP over HTTP (an ADOT collector beside the task in ECS, which
  sends spans to X-Ray and metrics to CloudWatch as EMF; or a collector in docker compose).
- else ``RELAY_TELEMETRY_DIR`` set: JSON lines in ``<dir>/<service>.spans.jsonl`` and
  ``<dir>/<service>.metrics.jsonl`` (the local stack; ``relay trace`` reads them).
- else nothing leaves the process; trace ids are still made, propagated and logged.

Traces start where work starts: an HTTP request or a message. A client call with no span around
it (the outbox relay's poll, a queue's long poll, a lease renewal) records nothing.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from opentelemetry import metrics, propagate, trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.botocore import AiobotocoreInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.propagators.aws import AwsXRayPropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.sdk.util import ns_to_iso_str
from opentelemetry.trace import (
    Link,
    SpanContext,
    SpanKind,
    format_span_id,
    format_trace_id,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes
from starlette.types import ASGIApp

from relay_shared.server_spans import ServerSpans
from relay_shared.settings import ServiceSettings

# Spans leave in small batches, often. An export runs in the processor's thread but holds the
# GIL while it encodes (~35 µs a span as JSON lines, ~80 µs as OTLP protobuf): a batch of the
# SDK's default 512 took 20-40 ms, and the event loop ran at half speed meanwhile, a latency
# spike each time (docs/benchmarks.md, intake p99). The standard OTEL_BSP_* variables still
# override both.
SPAN_EXPORT_BATCH = 64
SPAN_EXPORT_DELAY_MILLIS = 200
# No server span for these (searched in the path): the probes, and live WebSocket connections
# (the gateway's /v1/ws, the notifier's /internal/ws). A connection's span would last as long as
# the connection, hours, and the ASGI instrumentation set its status again on every frame sent:
# 6-8 % of the gateway's and the notifier's CPU per frame with 1,000 connections open (py-spy
# under the fan-out bench). What a connection calls (the gateway's check that a subscribed task
# is the tenant's) then has no trace around it, and a client call never starts one
# (NoClientRoots): those checks are not traced.
UNTRACED_PATHS = re.compile(r"healthz|readyz|/(v1|internal)/ws$")


class NoClientRoots(Sampler):
    """Samples new traces at ``ratio``, except one that would start at a client call: such a
    call (a poll, a heartbeat) has no request or message around it and would make a trace of
    its own every second."""

    def __init__(self, ratio: float = 1.0) -> None:
        self._ratio = TraceIdRatioBased(ratio)

    def should_sample(  # noqa: PLR0917 - the Sampler interface
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        if kind is SpanKind.CLIENT:
            return SamplingResult(Decision.DROP)
        return self._ratio.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"NoClientRoots{{{self._ratio.get_description()}}}"


def sampler(ratio: float) -> Sampler:
    return ParentBased(root=NoClientRoots(ratio))


def resource(settings: ServiceSettings) -> Resource:
    service = settings.service_name
    version = settings.service_version or _package_version(service)
    return Resource.create(
        {
            "service.name": f"relay-{service}",
            "service.namespace": "relay",
            "service.version": version,
            "service.instance.id": f"{os.uname().nodename}-{os.getpid()}",
            "deployment.environment.name": settings.env,
        }
    )


def _package_version(name: str) -> str:
    try:
        return str(metadata.version(name))
    except metadata.PackageNotFoundError:
        return "unknown"


class JsonLinesSpanExporter(SpanExporter):
    """Spans as JSON lines in a file, in the shape of ``ReadableSpan.to_json`` (what
    ``relay trace`` reads), written without its cost: ``to_json`` serialises the process's
    resource again for every span (it was a fifth of the gateway's CPU under load)."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._resources: dict[int, str] = {}  # id(resource) -> its JSON

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self._out.write("".join(self._line(span) for span in spans))
        self._out.flush()
        return SpanExportResult.SUCCESS

    def _line(self, span: ReadableSpan) -> str:
        status: dict[str, str] = {"status_code": span.status.status_code.name}
        if span.status.description:
            status["description"] = span.status.description
        record: dict[str, Any] = {
            "name": span.name,
            "context": _context(span.context) if span.context else None,
            "kind": str(span.kind),
            "parent_id": f"0x{format_span_id(span.parent.span_id)}" if span.parent else None,
            "start_time": ns_to_iso_str(span.start_time) if span.start_time else None,
            "end_time": ns_to_iso_str(span.end_time) if span.end_time else None,
            "status": status,
            "attributes": dict(span.attributes or {}),
            "events": [
                {
                    "name": event.name,
                    "timestamp": ns_to_iso_str(event.timestamp),
                    "attributes": dict(event.attributes or {}),
                }
                for event in span.events
            ],
            "links": [
                {"context": _context(link.context), "attributes": dict(link.attributes or {})}
                for link in span.links
            ],
        }
        resource = self._resources.get(id(span.resource))
        if resource is None:
            resource = self._resources[id(span.resource)] = json.dumps(
                {"attributes": dict(span.resource.attributes), "schema_url": ""},
                separators=(",", ":"),
                default=str,
            )
        text = json.dumps(record, separators=(",", ":"), default=str)
        return f'{text[:-1]},"resource":{resource}}}\n'

    def shutdown(self) -> None:
        self._out.flush()


def _context(context: SpanContext) -> dict[str, str]:
    return {
        "trace_id": f"0x{format_trace_id(context.trace_id)}",
        "span_id": f"0x{format_span_id(context.span_id)}",
        "trace_state": repr(context.trace_state),
    }


@dataclass
class Telemetry:
    """The process's providers; ``shutdown`` flushes what is buffered."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    files: list[IO[str]] = field(default_factory=list)

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
        for file in self.files:
            file.close()


def configure_telemetry(
    settings: ServiceSettings,
    *,
    span_processors: Sequence[SpanProcessor] = (),
    metric_readers: Sequence[MetricReader] = (),
    instrument: bool = True,
) -> Telemetry:
    """Install the process-wide providers, propagators and (``instrument``) the library
    instrumentation. Exporters follow the settings (module docstring); tests pass their own
    processors and readers."""
    files: list[IO[str]] = []
    processors = list(span_processors)
    readers = list(metric_readers)
    exporters = _exporters(settings, files)
    if exporters is not None:
        span_exporter, metric_exporter = exporters
        processors.append(span_processor(span_exporter))
        readers.append(
            PeriodicExportingMetricReader(
                metric_exporter,
                export_interval_millis=settings.metrics_interval_seconds * 1000,
            )
        )
    tracer_provider = TracerProvider(
        resource=resource(settings),
        sampler=sampler(settings.trace_sample_ratio),
        id_generator=AwsXRayIdGenerator(),
    )
    for processor in processors:
        tracer_provider.add_span_processor(processor)
    meter_provider = MeterProvider(resource=resource(settings), metric_readers=readers)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    propagate.set_global_textmap(
        CompositePropagator([TraceContextTextMapPropagator(), AwsXRayPropagator()])
    )
    if instrument:
        instrument_libraries(sql=settings.trace_sql)
    return Telemetry(tracer_provider, meter_provider, files)


def span_processor(exporter: SpanExporter) -> BatchSpanProcessor:
    def default(variable: str, value: int) -> int | None:
        return None if variable in os.environ else value  # None: the SDK reads the variable

    return BatchSpanProcessor(
        exporter,
        schedule_delay_millis=default("OTEL_BSP_SCHEDULE_DELAY", SPAN_EXPORT_DELAY_MILLIS),
        max_export_batch_size=default("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", SPAN_EXPORT_BATCH),
    )


def _exporters(settings: ServiceSettings, files: list[IO[str]]) -> tuple[SpanExporter, Any] | None:
    if settings.otlp_endpoint:
        base = settings.otlp_endpoint.rstrip("/")
        return (
            OTLPSpanExporter(endpoint=f"{base}/v1/traces"),
            OTLPMetricExporter(endpoint=f"{base}/v1/metrics"),
        )
    if settings.telemetry_dir:
        directory = Path(settings.telemetry_dir)
        directory.mkdir(parents=True, exist_ok=True)
        spans = (directory / f"{settings.service_name}.spans.jsonl").open("a", encoding="utf-8")
        points = (directory / f"{settings.service_name}.metrics.jsonl").open("a", encoding="utf-8")
        files += [spans, points]
        return (
            JsonLinesSpanExporter(spans),
            ConsoleMetricExporter(
                out=points, formatter=lambda data: data.to_json(indent=None) + "\n"
            ),
        )
    return None


def instrument_libraries(*, sql: bool = False) -> None:
    """The contrib instrumentations of the clients every service uses (idempotent); psycopg's,
    a span per SQL statement, only with ``sql`` (RELAY_TRACE_SQL)."""
    instrumentors: list[Any] = [
        HTTPXClientInstrumentor(),
        RedisInstrumentor(),
        AiobotocoreInstrumentor(),  # type: ignore[no-untyped-call]
    ]
    if sql:
        instrumentors.append(PsycopgInstrumentor())
    for instrumentor in instrumentors:
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()


# FastAPI's own OpenTelemetry layer (its ``telemetry`` argument) stays out: instrument_app's does
# the server spans and request durations, and a second layer only costs CPU on every request.
NO_FASTAPI_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def instrument_app(app: FastAPI) -> None:
    """A server span and a duration per request (server_spans.py), outermost in the app; the
    probes and live connections (UNTRACED_PATHS) left out. Idempotent."""
    build = app.build_middleware_stack
    if getattr(build, "relay_server_spans", False):
        return

    def build_middleware_stack() -> ASGIApp:
        return ServerSpans(build(), untraced=UNTRACED_PATHS)

    build_middleware_stack.relay_server_spans = True  # type: ignore[attr-defined]
    app.build_middleware_stack = build_middleware_stack  # type: ignore[method-assign]
