"""SqsConsumer against a real moto server queue."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from relay_devkit.testing import eventually
from relay_shared.aws import aws_client
from relay_shared.consumer import Defer, ReceivedMessage, SqsConsumer
from relay_shared.settings import ServiceSettings

pytestmark = pytest.mark.integration


@pytest.fixture
async def sqs(moto_endpoint: str) -> AsyncIterator[Any]:
    settings = ServiceSettings(service_name="t", aws_endpoint_url=moto_endpoint)
    async with aws_client(settings, "sqs") as client:
        yield client


async def _queue(sqs: Any, *, max_receive_count: int = 5) -> tuple[str, str]:
    name = f"q-{uuid.uuid4().hex[:8]}"
    dlq = (await sqs.create_queue(QueueName=f"{name}-dlq"))["QueueUrl"]
    dlq_arn = (await sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"]))[
        "Attributes"
    ]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count})
    url = (await sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": policy}))["QueueUrl"]
    return url, dlq


async def _send(sqs: Any, url: str, bodies: list[str]) -> None:
    for start in range(0, len(bodies), 10):
        await sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])
            ],
        )


async def _depth(sqs: Any, url: str) -> int:
    attrs = await sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )
    a = attrs["Attributes"]
    return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])


async def test_runs_at_most_the_configured_number_of_handlers_at_once(sqs: Any) -> None:
    url, _ = await _queue(sqs)
    await _send(sqs, url, [f"m{i}" for i in range(12)])
    running = peak = 0
    done: list[str] = []

    async def handler(message: ReceivedMessage) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.1)
        running -= 1
        done.append(message.body)

    consumer = SqsConsumer(sqs, url, handler, concurrency=3, wait_seconds=1)
    task = asyncio.create_task(consumer.run())

    async def count() -> int:
        return len(done)

    await eventually(count, until=lambda n: n == 12)
    consumer.stop()
    await task
    assert peak == 3
    assert sorted(done) == sorted(f"m{i}" for i in range(12))
    assert await _depth(sqs, url) == 0  # all deleted


async def test_stop_lets_in_flight_work_finish_and_deletes_it(sqs: Any) -> None:
    url, _ = await _queue(sqs)
    await _send(sqs, url, ["slow"])
    started, finished = asyncio.Event(), asyncio.Event()

    async def handler(message: ReceivedMessage) -> None:
        started.set()
        await asyncio.sleep(0.5)
        finished.set()

    consumer = SqsConsumer(sqs, url, handler, wait_seconds=1)
    task = asyncio.create_task(consumer.run())
    await asyncio.wait_for(started.wait(), 10)
    consumer.stop()
    await asyncio.wait_for(task, 10)
    assert finished.is_set()
    assert await _depth(sqs, url) == 0


async def test_work_past_the_grace_period_is_released_for_redelivery(sqs: Any) -> None:
    url, _ = await _queue(sqs)
    await _send(sqs, url, ["stuck"])
    started = asyncio.Event()

    async def handler(message: ReceivedMessage) -> None:
        started.set()
        await asyncio.sleep(60)

    consumer = SqsConsumer(sqs, url, handler, wait_seconds=1, visibility_timeout=60)
    task = asyncio.create_task(consumer.run(grace_seconds=0.2))
    await asyncio.wait_for(started.wait(), 10)
    consumer.stop()
    await asyncio.wait_for(task, 10)
    # visible again at once, not after the 60 s visibility timeout
    again = await sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)
    assert [m["Body"] for m in again.get("Messages", [])] == ["stuck"]


async def test_a_poison_message_lands_in_the_dlq_after_max_receives(sqs: Any) -> None:
    url, dlq = await _queue(sqs, max_receive_count=2)
    await _send(sqs, url, ["poison"])
    attempts = 0

    async def handler(message: ReceivedMessage) -> None:
        nonlocal attempts
        attempts += 1
        raise ValueError("cannot parse")

    consumer = SqsConsumer(sqs, url, handler, wait_seconds=1, max_backoff_seconds=0)
    task = asyncio.create_task(consumer.run())

    async def dlq_bodies() -> list[str]:
        response = await sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=0, VisibilityTimeout=0)
        return [m["Body"] for m in response.get("Messages", [])]

    assert await eventually(dlq_bodies) == ["poison"]
    consumer.stop()
    await task
    assert attempts == 2


async def test_a_long_handler_keeps_its_message_invisible(sqs: Any) -> None:
    url, _ = await _queue(sqs)
    await _send(sqs, url, ["long"])
    deliveries = 0

    async def handler(message: ReceivedMessage) -> None:
        nonlocal deliveries
        deliveries += 1
        await asyncio.sleep(3.5)  # longer than the 2 s visibility timeout

    # two slots: if the message became visible again, this consumer would take it twice
    consumer = SqsConsumer(sqs, url, handler, concurrency=2, wait_seconds=1, visibility_timeout=2)
    task = asyncio.create_task(consumer.run())

    async def depth() -> int:
        return await _depth(sqs, url)

    await eventually(depth, until=lambda n: n == 0, within=20)
    consumer.stop()
    await task
    assert deliveries == 1


async def test_a_deferred_message_comes_back_after_the_delay_and_is_not_an_error(
    sqs: Any,
) -> None:
    url, _ = await _queue(sqs)
    await _send(sqs, url, ["later"])
    seen: list[float] = []

    async def handler(message: ReceivedMessage) -> None:
        seen.append(asyncio.get_running_loop().time())
        if len(seen) == 1:
            raise Defer(2, "another worker holds it")

    consumer = SqsConsumer(sqs, url, handler, wait_seconds=1)
    task = asyncio.create_task(consumer.run())

    async def handled() -> int:
        return len(seen)

    await eventually(handled, until=lambda n: n == 2, within=15)
    consumer.stop()
    await task
    assert seen[1] - seen[0] >= 1.5  # not before the delay
    assert await _depth(sqs, url) == 0


async def test_handed_back_until_covers_a_predecessors_in_flight_and_every_hand_back(
    sqs: Any,
) -> None:
    """The time a reader must wait for so that nothing this consumer handed back is still
    invisible on the queue: one visibility timeout from the start (a killed process's messages
    in flight), then the latest failure backoff or deferral."""
    url, _ = await _queue(sqs)
    start = datetime.now(UTC)
    handled: dict[str, list[datetime]] = {}

    async def handler(message: ReceivedMessage) -> None:
        handled.setdefault(message.body, []).append(datetime.now(UTC))
        if len(handled[message.body]) == 1:
            if message.body == "defer":
                raise Defer(40, "an outage")
            raise RuntimeError("a failure")  # backed off 2 s on its first receive

    consumer = SqsConsumer(sqs, url, handler, wait_seconds=1, visibility_timeout=1)
    assert start + timedelta(seconds=1) <= consumer.handed_back_until
    task = asyncio.create_task(consumer.run())

    async def seen() -> dict[str, int]:
        return {body: len(times) for body, times in handled.items()}

    await _send(sqs, url, ["fail"])
    await eventually(seen, until=lambda n: n.get("fail") == 2, within=15)
    failed_at = handled["fail"][0]
    assert failed_at + timedelta(seconds=2) <= consumer.handed_back_until
    assert consumer.handed_back_until <= handled["fail"][1]  # it was visible again by then
    await _send(sqs, url, ["defer"])
    await eventually(seen, until=lambda n: n.get("defer") == 1, within=15)
    consumer.stop()
    await task
    deferred_at = handled["defer"][0]
    assert deferred_at + timedelta(seconds=40) <= consumer.handed_back_until
    assert consumer.handed_back_until <= datetime.now(UTC) + timedelta(seconds=40)


async def test_cancelling_the_consumer_hands_in_flight_messages_back(sqs: Any) -> None:
    url, _ = await _queue(sqs)
    await _send(sqs, url, ["held"])
    started = asyncio.Event()

    async def handler(message: ReceivedMessage) -> None:
        started.set()
        await asyncio.sleep(60)

    consumer = SqsConsumer(sqs, url, handler, wait_seconds=1, visibility_timeout=60)
    task = asyncio.create_task(consumer.run())
    await asyncio.wait_for(started.wait(), 10)
    task.cancel()  # e.g. the process's own shutdown deadline passed
    await asyncio.gather(task, return_exceptions=True)
    again = await sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)
    assert [m["Body"] for m in again.get("Messages", [])] == ["held"]


async def test_a_stopping_consumer_drains_at_once_then_hands_back_what_its_last_poll_gets(
    sqs: Any,
) -> None:
    """The long poll still open when the consumer stops may yet be handed a message: it goes
    back on the queue at once, not after the visibility timeout. The consumer says it drained
    before that wait, so the loop stopped after it need not wait too (loops.background)."""
    url, _ = await _queue(sqs)

    async def handler(message: ReceivedMessage) -> None:
        raise AssertionError("a stopped consumer handles nothing")

    polling = asyncio.Event()

    class _Polls:
        """The SQS client, saying when a receive call has gone out."""

        def __getattr__(self, name: str) -> Any:
            return getattr(sqs, name)

        def receive_message(self, **kwargs: Any) -> Any:
            call = sqs.receive_message(**kwargs)
            polling.set()
            return call

    consumer = SqsConsumer(_Polls(), url, handler, wait_seconds=20, visibility_timeout=60)
    task = asyncio.create_task(consumer.run())
    await asyncio.wait_for(polling.wait(), timeout=10)
    await asyncio.sleep(0.2)  # the call reaches the emulator, which holds it open
    consumer.stop()
    await asyncio.wait_for(consumer.drained(), timeout=1)
    assert not task.done()  # still waiting on its abandoned poll
    await _send(sqs, url, ["late"])
    await asyncio.wait_for(task, timeout=10)
    again = await sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2)
    assert [m["Body"] for m in again.get("Messages", [])] == ["late"]


class _CountingDeletes:
    """The SQS client, counting DeleteMessageBatch calls and the handles in each."""

    def __init__(self, sqs: Any) -> None:
        self._sqs = sqs
        self.batches: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)

    async def delete_message_batch(self, **kwargs: Any) -> Any:
        self.batches.append(len(kwargs["Entries"]))
        return await self._sqs.delete_message_batch(**kwargs)


@pytest.mark.parametrize(("linger", "calls"), [(0.0, 5), (5.0, 1)])
async def test_deletes_of_messages_handled_apart_share_a_call_within_the_linger(
    sqs: Any, linger: float, calls: int
) -> None:
    url, _ = await _queue(sqs)
    counting = _CountingDeletes(sqs)
    done: list[str] = []

    async def handler(message: ReceivedMessage) -> None:
        done.append(message.body)

    consumer = SqsConsumer(counting, url, handler, wait_seconds=1, delete_linger_seconds=linger)
    task = asyncio.create_task(consumer.run())
    try:
        for n in range(5):  # one at a time, each handled before the next is sent
            await _send(sqs, url, [f"m{n}"])

            async def handled(expected: int = n + 1) -> bool:
                return len(done) == expected

            await eventually(handled)
        await eventually(lambda: _depth(sqs, url), until=lambda depth: depth == 0, within=10)
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 10)

    assert sum(counting.batches) == 5
    assert len(counting.batches) == calls


async def test_a_stopping_consumer_deletes_at_once_whatever_the_linger(sqs: Any) -> None:
    url, _ = await _queue(sqs)
    await _send(sqs, url, ["last"])
    handled = asyncio.Event()

    async def handler(message: ReceivedMessage) -> None:
        handled.set()

    consumer = SqsConsumer(sqs, url, handler, wait_seconds=1, delete_linger_seconds=60.0)
    task = asyncio.create_task(consumer.run())
    await asyncio.wait_for(handled.wait(), 10)
    consumer.stop()
    # the last long poll (1 s) and the delete, not the minute of linger
    await asyncio.wait_for(task, 10)
    assert await _depth(sqs, url) == 0
