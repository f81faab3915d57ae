"""The consumer names the reason a message goes to the DLQ, on a real moto server queue."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import pytest

from relay_devkit.testing import eventually
from relay_shared.aws import aws_client
from relay_shared.consumer import Defer, ReceivedMessage, SqsConsumer, envelope_fields
from relay_shared.events import TaskCancelRequested
from relay_shared.settings import ServiceSettings

pytestmark = pytest.mark.integration

CONSUMER_LOG = "relay_shared.consumer"
TRACE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


@pytest.fixture
async def sqs(moto_endpoint: str) -> AsyncIterator[Any]:
    settings = ServiceSettings(service_name="t", aws_endpoint_url=moto_endpoint)
    async with aws_client(settings, "sqs") as client:
        yield client


async def _queue(sqs: Any, *, max_receive_count: int | None) -> tuple[str, str]:
    """A queue and its DLQ; without a redrive policy when max_receive_count is None."""
    name = f"q-{uuid.uuid4().hex[:8]}"
    dlq = (await sqs.create_queue(QueueName=f"{name}-dlq"))["QueueUrl"]
    dlq_arn = (await sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"]))[
        "Attributes"
    ]["QueueArn"]
    attributes = {}
    if max_receive_count is not None:
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}
        )
    url = (await sqs.create_queue(QueueName=name, Attributes=attributes))["QueueUrl"]
    return url, dlq


def _event_body() -> tuple[str, TaskCancelRequested]:
    """An EventBridge envelope as an SQS target receives it."""
    event = TaskCancelRequested.create({"reason": "user asked"}, tenant_id="acme", task_id=uuid4())
    envelope = {"detail-type": event.name, "source": event.source(), "detail": event.detail()}
    return json.dumps(envelope), event


async def _dlq_bodies(sqs: Any, dlq: str) -> list[str]:
    response = await sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=0, VisibilityTimeout=0)
    return [m["Body"] for m in response.get("Messages", [])]


def _consumer_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == CONSUMER_LOG and "message" in r.getMessage()]


async def test_the_last_failure_is_logged_at_error_with_its_reason_and_the_message_is_dead(
    sqs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=CONSUMER_LOG)
    url, dlq = await _queue(sqs, max_receive_count=3)
    body, event = _event_body()
    message_id = (await sqs.send_message(QueueUrl=url, MessageBody=body))["MessageId"]

    async def handler(message: ReceivedMessage) -> None:
        raise RuntimeError("the bucket is gone")

    consumer = SqsConsumer(
        sqs, url, handler, wait_seconds=1, max_backoff_seconds=0, name="relay-t-notifier"
    )
    task = asyncio.create_task(consumer.run())
    assert await eventually(lambda: _dlq_bodies(sqs, dlq)) == [body]
    consumer.stop()
    await task

    records = _consumer_records(caplog)
    assert [r.levelno for r in records] == [logging.WARNING, logging.WARNING, logging.ERROR]
    assert records[-1].getMessage() == (
        f"relay-t-notifier: message {message_id} "
        f"(task.cancel_requested {event.metadata.event_id}) "
        "goes to the DLQ after 3 receives: RuntimeError: the bucket is gone"
    )
    assert records[-1].exc_info is not None  # the traceback is in the log too


async def test_a_garbage_body_is_named_as_unknown_on_its_last_failure(
    sqs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=CONSUMER_LOG)
    url, dlq = await _queue(sqs, max_receive_count=1)
    await sqs.send_message(QueueUrl=url, MessageBody="not json")

    async def handler(message: ReceivedMessage) -> None:
        raise ValueError("cannot parse")

    consumer = SqsConsumer(sqs, url, handler, wait_seconds=1, max_backoff_seconds=0, name="q")
    task = asyncio.create_task(consumer.run())
    assert await eventually(lambda: _dlq_bodies(sqs, dlq)) == ["not json"]
    consumer.stop()
    await task

    [record] = _consumer_records(caplog)
    assert record.levelno == logging.ERROR
    assert "(? ?) goes to the DLQ after 1 receives: ValueError: cannot parse" in (
        record.getMessage()
    )


async def test_deferrals_do_not_use_up_the_receives_a_queue_allows(
    sqs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=CONSUMER_LOG)
    url, dlq = await _queue(sqs, max_receive_count=2)
    body, _ = _event_body()
    await sqs.send_message(
        QueueUrl=url,
        MessageBody=body,
        MessageSystemAttributes={
            "AWSTraceHeader": {"DataType": "String", "StringValue": TRACE_HEADER}
        },
    )
    seen: list[ReceivedMessage] = []

    async def handler(message: ReceivedMessage) -> None:
        seen.append(message)
        if len(seen) <= 4:
            raise Defer(0, "another worker holds the task")

    consumer = SqsConsumer(sqs, url, handler, wait_seconds=1)
    task = asyncio.create_task(consumer.run())

    async def handled() -> int:
        return len(seen)

    await eventually(handled, until=lambda n: n == 5, within=20)
    consumer.stop()
    await task

    # four deferrals on a queue that dead-letters on the third receive: handled, not set aside
    assert [m.body for m in seen] == [body] * 5
    assert [m.deferrals for m in seen] == [0, 1, 2, 3, 4]
    assert [m.receive_count for m in seen] == [1] * 5
    assert {m.attributes.get("AWSTraceHeader") for m in seen} == {TRACE_HEADER}
    assert await _dlq_bodies(sqs, dlq) == []
    response = await sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0, VisibilityTimeout=0)
    assert response.get("Messages", []) == []
    records = _consumer_records(caplog)
    assert [r.levelno for r in records] == [logging.INFO] * 4
    assert "(deferral 4): another worker holds the task" in records[-1].getMessage()


async def test_past_max_deferrals_a_deferral_counts_and_the_last_is_logged_at_error(
    sqs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=CONSUMER_LOG)
    url, dlq = await _queue(sqs, max_receive_count=2)
    body, _ = _event_body()
    sent = await sqs.send_message(QueueUrl=url, MessageBody=body)

    async def handler(message: ReceivedMessage) -> None:
        raise Defer(0, "another worker holds the task")

    consumer = SqsConsumer(sqs, url, handler, wait_seconds=1, max_deferrals=1)
    task = asyncio.create_task(consumer.run())
    assert await eventually(lambda: _dlq_bodies(sqs, dlq)) == [body]
    consumer.stop()
    await task

    records = _consumer_records(caplog)
    # sent again once; then the copy's receives count: one deferral, then the DLQ. The copy may
    # be received (and logged) before the original's deferral is, so they are told by message.
    original = [r for r in records if sent["MessageId"] in r.getMessage()]
    copy = [r for r in records if r not in original]
    assert [r.levelno for r in original] == [logging.INFO]
    assert "(deferral 1)" in original[0].getMessage()
    assert [r.levelno for r in copy] == [logging.INFO, logging.ERROR]
    assert "deferred 0s on receive 1" in copy[0].getMessage()
    assert "after 2 receives: Defer: another worker holds the task" in copy[1].getMessage()


async def test_without_a_redrive_policy_every_failure_stays_a_warning(
    sqs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=CONSUMER_LOG)
    url, _ = await _queue(sqs, max_receive_count=None)
    await sqs.send_message(QueueUrl=url, MessageBody="poison")
    attempts = 0

    async def handler(message: ReceivedMessage) -> None:
        nonlocal attempts
        attempts += 1
        raise ValueError("cannot parse")

    consumer = SqsConsumer(sqs, url, handler, wait_seconds=1, max_backoff_seconds=0)
    task = asyncio.create_task(consumer.run())

    async def tried() -> int:
        return attempts

    await eventually(tried, until=lambda n: n >= 4)
    consumer.stop()
    await task
    levels = {r.levelno for r in _consumer_records(caplog)}
    assert levels == {logging.WARNING}


def test_envelope_fields_reads_what_it_can_and_tolerates_garbage() -> None:
    body, event = _event_body()
    assert envelope_fields(body) == {
        "detail-type": "task.cancel_requested",
        "event_id": str(event.metadata.event_id),
        "task_id": str(event.metadata.task_id),
        "tenant_id": "acme",
    }
    assert envelope_fields('{"detail-type": "task.started", "detail": []}') == {
        "detail-type": "task.started"
    }
    for garbage in ("", "not json", "[1, 2]", '"text"', '{"detail": {"metadata": 7}}'):
        assert envelope_fields(garbage) == {}
