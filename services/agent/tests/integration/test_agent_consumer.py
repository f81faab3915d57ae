"""The whole path: task.submitted on the bus -> the agent app's queue -> the agent loop ->
outbox relay -> EventBridge -> the tasks, notifier and artifacts queues."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

import pytest
from asgi_lifespan import LifespanManager

from agent.app import create_app
from relay_devkit.testing import eventually, wait_ready
from relay_ops.stack.topology import Topology
from relay_shared.aws import aws_client
from relay_shared.events import TaskSubmitted, TaskSubmittedData
from relay_shared.outbox import to_outbound
from relay_shared.publisher import EventBridgePublisher

from .conftest import swapping

pytestmark = pytest.mark.integration


class QueueReader:
    """Collects what lands in one service's queue (deleting it as it goes)."""

    def __init__(self, sqs: Any, url: str) -> None:
        self._sqs = sqs
        self._url = url
        self.events: list[dict[str, Any]] = []

    async def poll(self) -> list[str]:
        response = await self._sqs.receive_message(
            QueueUrl=self._url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        )
        messages = response.get("Messages", [])
        for message in messages:
            self.events.append(json.loads(message["Body"]))
        if messages:
            await self._sqs.delete_message_batch(
                QueueUrl=self._url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )
        return [e["detail-type"] for e in self.events]


async def test_task_submitted_on_the_bus_runs_through_the_agent_app(
    agent_settings, topology: Topology, counting
) -> None:
    provider = counting()
    app = create_app(agent_settings, ports=swapping(provider=provider))
    event = TaskSubmitted.create(
        TaskSubmittedData(prompt="End to end\n/steps 2", model="scripted"),
        tenant_id="acme",
        task_id=uuid.uuid4(),
    )
    async with (
        LifespanManager(app, startup_timeout=60, shutdown_timeout=30),
        aws_client(agent_settings, "events") as events,
        aws_client(agent_settings, "sqs") as sqs,
    ):
        await wait_ready(app)
        outcome = await EventBridgePublisher(events, agent_settings.event_bus_name).publish(
            [to_outbound(event)]
        )
        assert outcome.failed == {}
        tasks = QueueReader(sqs, topology.queue_urls["tasks"])
        notifier = QueueReader(sqs, topology.queue_urls["notifier"])
        artifacts = QueueReader(sqs, topology.queue_urls["artifacts"])

        await eventually(tasks.poll, until=lambda names: "task.succeeded" in names, within=30)
        await eventually(notifier.poll, until=lambda names: "task.succeeded" in names, within=10)
        await eventually(artifacts.poll, until=lambda names: len(names) >= 1, within=10)

        async def agent_queue_empty() -> dict[str, str]:
            attributes = await sqs.get_queue_attributes(
                QueueUrl=topology.queue_urls["agent"],
                AttributeNames=["ApproximateNumberOfMessages",
                                "ApproximateNumberOfMessagesNotVisible"],
            )  # fmt: skip
            return dict(attributes["Attributes"])

        # the handled task.submitted was acknowledged, not left for redelivery
        await eventually(agent_queue_empty, until=lambda a: set(a.values()) == {"0"}, within=10)

    lifecycle = Counter(e["detail-type"] for e in tasks.events)
    assert lifecycle == {"task.started": 1, "task.progressed": 2, "task.succeeded": 1}
    assert {e["source"] for e in tasks.events} == {"relay.agent"}
    assert {e["detail"]["metadata"]["task_id"] for e in tasks.events} == {
        str(event.metadata.task_id)
    }
    assert {e["detail"]["metadata"]["correlation_id"] for e in tasks.events} == {
        event.metadata.correlation_id
    }
    # the notifier also subscribes to task.submitted; the agent's events follow it there
    assert Counter(e["detail-type"] for e in notifier.events) == {
        "task.submitted": 1,
        "task.started": 1,
        "task.progressed": 2,
        "task.succeeded": 1,
    }
    [uploaded] = artifacts.events
    assert uploaded["detail-type"] == "artifact.uploaded"
    succeeded = next(e for e in tasks.events if e["detail-type"] == "task.succeeded")
    assert succeeded["detail"]["data"]["artifact_ids"] == [
        uploaded["detail"]["data"]["artifact_id"]
    ]
    assert provider.calls == 3
