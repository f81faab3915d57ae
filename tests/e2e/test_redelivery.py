"""At-least-once delivery: every event of a finished task delivered a second time changes nothing.

The events are put on the bus again exactly as their producers published them (same event ids),
so every consumer (tasks, agent, artifacts, notifier) receives each one twice. The checks then
use the public API only.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import boto3
import pytest

from relay_devkit.api_client import PublicApi, TimelineEvent
from relay_shared.events import CATALOG

pytestmark = pytest.mark.e2e


def _bus_events(
    timeline: list[TimelineEvent], tenant_id: str, task_id: str
) -> list[dict[str, Any]]:
    """The PutEvents entries that produced this timeline, rebuilt from what the client saw."""
    entries = []
    for e in timeline:
        cls = CATALOG[e.event]
        event = cls.model_validate(
            {
                "metadata": {
                    "event_id": e.data["event_id"],
                    "schema_version": cls.schema_version,
                    "occurred_at": e.data["occurred_at"],
                    "producer": cls.producer,
                    "tenant_id": tenant_id,
                    "task_id": task_id,
                    "correlation_id": task_id,
                },
                "data": e.data["data"],
            }
        )
        entries.append(
            {
                "Source": cls.source(),
                "DetailType": cls.name,
                "Detail": json.dumps(event.detail()),
            }
        )
    return entries


async def test_every_event_delivered_twice_changes_nothing(
    api: PublicApi, stack: Any, tenant: str
) -> None:
    task = await api.submit("/steps 2\n/artifact twice.md")
    timeline = await api.timeline(task["id"])
    before_task = await api.finished_task(task["id"])
    before_artifacts = await api.artifacts(task["id"])
    artifact = before_artifacts[0]

    entries = _bus_events(timeline, tenant, task["id"])
    # the internal artifact.uploaded too, under a new event id: the artifact id must still dedupe
    uploaded = CATALOG["artifact.uploaded"].create(
        {
            "artifact_id": artifact["id"],
            "name": artifact["name"],
            "content_type": artifact["content_type"],
            "size": artifact["size"],
            "sha256": artifact["sha256"],
            "bucket": stack.bucket,
            "key": f"artifacts/{tenant}/{task['id']}/{artifact['id']}/1/{artifact['name']}",
            "attempt": 1,
        },
        tenant_id=tenant,
        task_id=task["id"],
    )
    entries.append(
        {
            "Source": uploaded.source(),
            "DetailType": uploaded.name,
            "Detail": json.dumps(uploaded.detail()),
        }
    )
    events = boto3.client("events", endpoint_url=stack.moto_endpoint, region_name="us-east-1")
    for start in range(0, len(entries), 10):
        batch = [{**e, "EventBusName": stack.bus} for e in entries[start : start + 10]]
        assert events.put_events(Entries=batch)["FailedEntryCount"] == 0

    # moto delivers to the queues inside PutEvents; once they are empty, every copy was handled
    await _queues_drained(stack)
    assert await api.timeline(task["id"]) == timeline
    after_task = await api.task(task["id"])
    assert after_task == before_task
    assert await api.artifacts(task["id"]) == before_artifacts


async def _queues_drained(stack: Any) -> None:
    sqs = boto3.client("sqs", endpoint_url=stack.moto_endpoint, region_name="us-east-1")
    for _ in range(100):
        depth = 0
        for url in stack.queue_urls():
            a = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            depth += int(a["ApproximateNumberOfMessages"])
            depth += int(a["ApproximateNumberOfMessagesNotVisible"])
        if depth == 0:
            return
        await asyncio.sleep(0.2)
    raise AssertionError("queues did not drain")
