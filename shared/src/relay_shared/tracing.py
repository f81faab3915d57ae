"""Trace context across the bus, on the OpenTelemetry API only (telemetry.py sets up the SDK).

A trace crosses EventBridge and SQS in two forms, and consumers take the first they find:

- ``AWSTraceHeader``: the X-Ray header the outbox relay gives each PutEvents entry as its
  ``TraceHeader``; EventBridge hands it to an SQS target as that system attribute. Only on AWS
  (moto does not forward it), and lost when a message is replayed from an archive.
- ``metadata.traceparent`` (W3C) inside the event: always there. ``DomainEvent.create`` sets it
  from the current span; the relay replaces it with its send span when it publishes, so both
  forms name the same parent.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.aws import AwsXRayPropagator
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACER = "relay"
TRACEPARENT = "traceparent"
XRAY_HEADER = "X-Amzn-Trace-Id"
AWS_TRACE_HEADER = "AWSTraceHeader"  # the SQS system attribute

T = TypeVar("T")

_w3c = TraceContextTextMapPropagator()
_xray = AwsXRayPropagator()


@functools.cache
def tracer() -> trace.Tracer:
    """Relay's tracer, made once: ``get_tracer`` builds a new one on every call (~3 % of the
    agent's CPU when called per span). Made before the provider is installed, it is OTel's
    proxy, which uses the provider from the moment there is one."""
    return trace.get_tracer(TRACER)


def current_traceparent(context: Context | None = None) -> str | None:
    """The W3C ``traceparent`` of the current span (or of ``context``); None without one."""
    carrier: dict[str, str] = {}
    _w3c.inject(carrier, context=context)
    return carrier.get(TRACEPARENT)


def xray_header(context: Context | None = None) -> str | None:
    """The X-Ray trace header (``Root=1-…;Parent=…;Sampled=…``) of the current span."""
    carrier: dict[str, str] = {}
    _xray.inject(carrier, context=context)
    return carrier.get(XRAY_HEADER)


def from_traceparent(traceparent: str | None) -> Context | None:
    """A context whose parent is the span ``traceparent`` names; None when it names none."""
    if not traceparent:
        return None
    context = _w3c.extract({TRACEPARENT: traceparent})
    return context if trace.get_current_span(context).get_span_context().is_valid else None


def from_xray_header(header: str | None) -> Context | None:
    if not header:
        return None
    context = _xray.extract({XRAY_HEADER: header})
    return context if trace.get_current_span(context).get_span_context().is_valid else None


def xray_trace_id(trace_id: int) -> str:
    """A trace id as X-Ray writes it: ``1-<8 hex: start time, epoch s>-<24 hex>``."""
    hex_id = f"{trace_id:032x}"
    return f"1-{hex_id[:8]}-{hex_id[8:]}"


def with_traceparent(detail: str, traceparent: str | None) -> str:
    """An event's detail JSON with ``metadata.traceparent`` replaced (None: unchanged)."""
    if traceparent is None:
        return detail
    document = json.loads(detail)
    document.setdefault("metadata", {})[TRACEPARENT] = traceparent
    return json.dumps(document, separators=(",", ":"))


def event_attributes(fields: Mapping[str, str]) -> dict[str, str]:
    """Span attributes for an event's envelope fields (see consumer.envelope_fields)."""
    names = {
        "detail-type": "relay.event.type",
        "event_id": "relay.event.id",
        "task_id": "relay.task_id",
        "tenant_id": "relay.tenant_id",
    }
    return {names[k]: v for k, v in fields.items() if k in names}


@contextmanager
def consumer_span(
    queue: str,
    message_id: str,
    *,
    aws_trace_header: str | None,
    traceparent: str | None,
    attributes: Mapping[str, Any],
) -> Iterator[Span]:
    """The process span of one SQS message (OpenTelemetry messaging conventions), child of the
    producer's span: from ``AWSTraceHeader`` when present, else ``metadata.traceparent``; when
    both are there and differ, the other one is a link."""
    from_header = from_xray_header(aws_trace_header)
    from_event = from_traceparent(traceparent)
    parent = from_header or from_event
    links = []
    if from_header is not None and from_event is not None:
        event_span = trace.get_current_span(from_event).get_span_context()
        header_span = trace.get_current_span(from_header).get_span_context()
        if event_span.span_id != header_span.span_id:
            links.append(Link(event_span))
    with tracer().start_as_current_span(
        f"process {queue}",
        context=parent,
        kind=SpanKind.CONSUMER,
        links=links,
        attributes={
            "messaging.system": "aws_sqs",
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": queue,
            "messaging.message.id": message_id,
            **attributes,
        },
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span


def tag_span(**fields: str | None) -> None:
    """Name what the current span works on: ``relay.task_id``, ``relay.tenant_id``…"""
    span = trace.get_current_span()
    for name, value in fields.items():
        if value:
            span.set_attribute(f"relay.{name}", value)


async def untraced(work: Awaitable[T]) -> T:
    """Await ``work`` outside any trace: for housekeeping beside traced work (a lease renewal,
    a heartbeat), whose client calls would otherwise fill the trace."""
    token = otel_context.attach(Context())
    try:
        return await work
    finally:
        otel_context.detach(token)


def fail(span: Span, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
