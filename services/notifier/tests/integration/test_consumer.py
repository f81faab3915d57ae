"""The whole path: events on the EventBridge bus -> rules -> the notifier's SQS queue ->
consumer -> timeline -> SSE."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import pytest

from relay_ops.stack.topology import Topology
from relay_shared.aws import aws_client
from relay_shared.outbox import to_outbound
from relay_shared.publisher import EventBridgePublisher

from .conftest import Harness, read_stream

pytestmark = pytest.mark.integration


async def test_events_from_the_bus_end_up_on_the_timeline_in_order(
    harness: Harness, topology: Topology, task_events: Callable
) -> None:
    t = task_events()
    run = t.run(steps=3)
    shuffled = run[:]
    random.Random(11).shuffle(shuffled)
    settings = harness.settings()
    async with harness.replica() as replica, aws_client(settings, "events") as events:
        publisher = EventBridgePublisher(events, settings.event_bus_name)
        outcome = await publisher.publish([to_outbound(e) for e in shuffled])
        assert outcome.failed == {}
        received = await asyncio.wait_for(
            read_stream(replica.url, t.task_id, harness.headers()), 45
        )
    assert [e["data"]["event_id"] for e in received if e["event"] != "artifact.published"] == [
        str(e.metadata.event_id) for e in run if e.name != "artifact.published"
    ]
    assert [e["id"] for e in received] == [str(seq) for seq in range(1, len(run) + 1)]
    assert received[-1]["event"] == "task.succeeded"
    # the queue is drained: every message was handled and deleted
    async with aws_client(settings, "sqs") as sqs:
        attributes = await sqs.get_queue_attributes(
            QueueUrl=topology.queue_urls["notifier"],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )
    assert set(attributes["Attributes"].values()) == {"0"}
