"""Trace context across the bus, with the in-memory exporter: a span that writes an event to the
outbox, the relay's send span, EventBridge and SQS on moto, the consumer's process span and the
handler's work form one trace with the right parents; AWSTraceHeader wins over the event's
traceparent when SQS delivers one (as EventBridge does on AWS)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from relay_devkit.testing import Recorded, eventually
from relay_ops.stack.topology import Topology
from relay_shared.aws import aws_client
from relay_shared.consumer import EventDispatcher, SqsConsumer
from relay_shared.db import Database
from relay_shared.events import DomainEvent, TaskSubmitted, TaskSubmittedData
from relay_shared.migrations import KIT_OUTBOX, migrate
from relay_shared.outbox import Outbox, OutboxRelay
from relay_shared.publisher import EventBridgePublisher
from relay_shared.settings import ServiceSettings
from relay_shared.tracing import tracer, xray_header

pytestmark = pytest.mark.integration


@pytest.fixture
async def clients(
    database_url: str, db_schema: str, topology: Topology, moto_endpoint: str
) -> AsyncIterator[tuple[ServiceSettings, Database, Any, Any]]:
    settings = ServiceSettings(
        service_name="tasks",
        env=topology.env,
        database_url=database_url,
        db_schema=db_schema,
        aws_endpoint_url=moto_endpoint,
    )
    await migrate(settings, KIT_OUTBOX)
    db = Database(database_url, db_schema)
    await db.open()
    try:
        async with aws_client(settings, "events") as events, aws_client(settings, "sqs") as sqs:
            yield settings, db, events, sqs
    finally:
        await db.close()


def _submitted() -> TaskSubmitted:
    return TaskSubmitted.create(
        TaskSubmittedData(prompt="trace me", model="scripted"),
        tenant_id="acme",
        task_id=uuid.uuid4(),
    )


async def _consume(sqs: Any, queue_url: str, count: int, name: str) -> list[DomainEvent]:
    """Run a consumer until ``count`` events were handled, each under a span of its own."""
    handled: list[DomainEvent] = []

    async def handle(event: DomainEvent) -> None:
        with tracer().start_as_current_span("handle"):
            handled.append(event)

    consumer = SqsConsumer(
        sqs, queue_url, EventDispatcher({"task.submitted": handle}), wait_seconds=1, name=name
    )
    running = asyncio.create_task(consumer.run())

    async def done() -> int:
        return len(handled)

    await eventually(done, until=lambda n: n >= count, within=20)
    consumer.stop()
    await running
    return handled


def _points(telemetry: Recorded) -> dict[str, list[dict[str, Any]]]:
    """Each metric's data points' attributes, from the test process's reader."""
    data = telemetry.metrics.get_metrics_data()
    found: dict[str, list[dict[str, Any]]] = {}
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found.setdefault(metric.name, []).extend(
                    dict(point.attributes or {}) for point in metric.data.data_points
                )
    return found


def _one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    [span] = [s for s in spans if s.name == name]
    return span


def _parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def test_one_trace_from_the_writer_through_the_bus_to_the_handler(
    clients: tuple[ServiceSettings, Database, Any, Any],
    topology: Topology,
    telemetry: Recorded,
) -> None:
    settings, db, events, sqs = clients
    started = int(time.time())
    with tracer().start_as_current_span("POST /v1/tasks", kind=SpanKind.SERVER) as request:
        sent = _submitted()
        async with db.transaction() as conn:
            await Outbox().add(conn, sent)
    relay = OutboxRelay(
        db, EventBridgePublisher(events, settings.event_bus_name), schema=settings.db_schema
    )
    assert await relay.publish_pending() == 1
    queue = f"agent-{uuid.uuid4().hex[:8]}"  # this test's metrics points are its own
    [received] = await _consume(sqs, topology.queue_urls["agent"], 1, queue)

    spans = telemetry.finished()
    send = _one(spans, "send task.submitted")
    process = _one(spans, f"process {queue}")
    handle = _one(spans, "handle")
    trace_id = request.get_span_context().trace_id
    assert {s.context.trace_id for s in (send, process, handle)} == {trace_id}
    # the writer's span -> the relay's send span -> the consumer's process span -> the handler
    assert sent.metadata.traceparent is not None
    assert f"{request.get_span_context().span_id:016x}" in sent.metadata.traceparent
    assert _parent_id(send) == request.get_span_context().span_id
    assert _parent_id(process) == send.context.span_id
    assert _parent_id(handle) == process.context.span_id
    assert send.kind is SpanKind.PRODUCER
    assert process.kind is SpanKind.CONSUMER
    # the event as delivered names the send span: it was stamped at publication
    assert received.metadata.traceparent == (f"00-{trace_id:032x}-{send.context.span_id:016x}-01")
    assert received.metadata.event_id == sent.metadata.event_id
    assert process.attributes is not None
    assert process.attributes["messaging.destination.name"] == queue
    assert process.attributes["relay.task_id"] == str(sent.metadata.task_id)
    assert process.attributes["relay.event.type"] == "task.submitted"
    # X-Ray-compatible: the first 32 bits are the trace's start, in epoch seconds
    assert started - 1 <= trace_id >> 96 <= int(time.time()) + 1

    # and the hop's metrics: outbox lag, queue lag, processing time by queue and outcome
    points = _points(telemetry)
    assert points["relay.outbox.lag"]
    assert {"messaging.destination.name": queue} in points["relay.consumer.lag"]
    assert {"messaging.destination.name": queue, "relay.outcome": "success"} in points[
        "messaging.process.duration"
    ]


async def test_the_aws_trace_header_is_the_parent_and_the_event_traceparent_a_link(
    clients: tuple[ServiceSettings, Database, Any, Any],
    topology: Topology,
    telemetry: Recorded,
) -> None:
    _, _, _, sqs = clients
    with tracer().start_as_current_span("writer"):
        event = _submitted()  # its traceparent names the writer's span
    with tracer().start_as_current_span("eventbridge hop") as hop:
        header = xray_header()
    assert header is not None
    body = json.dumps(
        {"detail-type": event.name, "source": event.source(), "detail": event.detail()}
    )
    await sqs.send_message(
        QueueUrl=topology.queue_urls["agent"],
        MessageBody=body,
        MessageSystemAttributes={"AWSTraceHeader": {"DataType": "String", "StringValue": header}},
    )
    await _consume(sqs, topology.queue_urls["agent"], 1, "agent")

    spans = telemetry.finished()
    process = _one(spans, "process agent")
    writer = _one(spans, "writer")
    assert _parent_id(process) == hop.get_span_context().span_id
    assert [link.context.span_id for link in process.links] == [writer.context.span_id]


async def test_a_failing_handler_marks_its_span_as_an_error(
    clients: tuple[ServiceSettings, Database, Any, Any],
    topology: Topology,
    telemetry: Recorded,
) -> None:
    _, _, _, sqs = clients
    event = _submitted()
    body = json.dumps(
        {"detail-type": event.name, "source": event.source(), "detail": event.detail()}
    )
    await sqs.send_message(QueueUrl=topology.queue_urls["agent"], MessageBody=body)

    async def broken(event: DomainEvent) -> None:
        raise RuntimeError("handler bug")

    consumer = SqsConsumer(
        sqs,
        topology.queue_urls["agent"],
        EventDispatcher({"task.submitted": broken}),
        wait_seconds=1,
        max_backoff_seconds=60,
        name="agent",
    )
    running = asyncio.create_task(consumer.run())

    async def processed() -> list[ReadableSpan]:
        return [s for s in telemetry.finished() if s.name == "process agent"]

    [process] = await eventually(processed, within=15)
    consumer.stop()
    await running
    assert not process.status.is_ok
    assert process.status.description == "RuntimeError: handler bug"
    # a new trace: nothing upstream was traced, so the message's process span is the root
    assert process.parent is None
    assert trace.get_current_span().get_span_context().is_valid is False
