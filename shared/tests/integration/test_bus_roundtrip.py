"""The kit's whole publishing path against real PostgreSQL and moto server:
outbox row -> relay -> EventBridge -> rule -> SQS -> consumer -> handler."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from relay_devkit.testing import eventually
from relay_ops.stack.topology import Topology
from relay_shared.aws import aws_client
from relay_shared.consumer import EventDispatcher, SqsConsumer
from relay_shared.db import Database
from relay_shared.events import DomainEvent, TaskSubmitted, TaskSubmittedData
from relay_shared.migrations import KIT_INBOX, KIT_OUTBOX, migrate
from relay_shared.outbox import Outbox, OutboxRelay, pending_count, to_outbound
from relay_shared.publisher import EventBridgePublisher
from relay_shared.settings import ServiceSettings

pytestmark = pytest.mark.integration


def _settings(database_url: str, schema: str, topology: Topology, endpoint: str) -> ServiceSettings:
    return ServiceSettings(
        service_name="tasks",
        env=topology.env,
        database_url=database_url,
        db_schema=schema,
        aws_endpoint_url=endpoint,
        consumer_wait_seconds=1,
        outbox_poll_interval=5.0,  # long: the NOTIFY wake-up must do the work, not polling
    )


def _submitted() -> TaskSubmitted:
    return TaskSubmitted.create(
        TaskSubmittedData(prompt="hello", model="scripted"), tenant_id="acme", task_id=uuid.uuid4()
    )


async def test_outbox_event_reaches_subscriber_queue(
    database_url: str, db_schema: str, topology: Topology, moto_endpoint: str
) -> None:
    settings = _settings(database_url, db_schema, topology, moto_endpoint)
    await migrate(settings, KIT_OUTBOX, KIT_INBOX)
    db = Database(database_url, db_schema)
    await db.open()
    received: list[DomainEvent] = []
    try:
        async with aws_client(settings, "events") as events, aws_client(settings, "sqs") as sqs:
            relay = OutboxRelay(
                db,
                EventBridgePublisher(events, settings.event_bus_name),
                schema=db_schema,
                poll_interval=5.0,
            )

            async def on_submitted(event: DomainEvent) -> None:
                received.append(event)

            consumer = SqsConsumer(
                sqs,
                topology.queue_urls["agent"],  # the agent subscribes to task.submitted
                EventDispatcher({"task.submitted": on_submitted}),
                wait_seconds=1,
            )
            relay_task = asyncio.create_task(relay.run())
            consumer_task = asyncio.create_task(consumer.run())
            await asyncio.sleep(0.3)  # let the relay start listening
            sent = _submitted()
            async with db.transaction() as conn:
                await Outbox().add(conn, sent)

            async def got() -> list[DomainEvent]:
                return received

            await eventually(got, within=4)  # under the 5 s poll interval
            relay.stop()
            consumer.stop()
            await asyncio.gather(relay_task, consumer_task)

            # as written, but for the traceparent: the relay stamps its send span (tracing.py)
            [got] = received
            assert got.metadata.traceparent is not None
            assert got.model_dump(exclude={"metadata": {"traceparent"}}) == sent.model_dump(
                exclude={"metadata": {"traceparent"}}
            )
            async with db.transaction() as conn:
                assert await pending_count(conn) == 0
            # the handled message was deleted: nothing comes back
            leftover = await sqs.receive_message(
                QueueUrl=topology.queue_urls["agent"], WaitTimeSeconds=0, VisibilityTimeout=0
            )
            assert leftover.get("Messages", []) == []
    finally:
        await db.close()


async def test_failed_handler_leaves_message_for_redelivery(
    topology: Topology, moto_endpoint: str
) -> None:
    settings = ServiceSettings(service_name="x", env=topology.env, aws_endpoint_url=moto_endpoint)
    calls = 0

    async def flaky(event: DomainEvent) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("transient")

    async with aws_client(settings, "events") as events, aws_client(settings, "sqs") as sqs:
        publisher = EventBridgePublisher(events, settings.event_bus_name)
        outcome = await publisher.publish([to_outbound(_submitted())])
        assert outcome.failed == {}
        consumer = SqsConsumer(
            sqs,
            topology.queue_urls["agent"],
            EventDispatcher({"task.submitted": flaky}),
            wait_seconds=1,
        )
        task = asyncio.create_task(consumer.run())

        async def call_count() -> int:
            return calls

        await eventually(call_count, until=lambda n: n >= 2, within=10)  # retry after 2 s
        consumer.stop()
        await task
    assert calls == 2
