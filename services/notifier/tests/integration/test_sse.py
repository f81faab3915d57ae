"""The SSE route over real HTTP, with live fan-out through real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from relay_devkit.testing import eventually
from relay_shared.events import DomainEvent

from .conftest import Harness, Replica, read_stream

pytestmark = pytest.mark.integration

RUN_TYPES = [
    "task.submitted",
    "task.started",
    "task.progressed",
    "task.progressed",
    "artifact.published",
    "task.succeeded",
]


async def _dispatch(replica: Replica, events: list[DomainEvent]) -> None:
    for event in events:
        await replica.dispatch(event)


async def test_a_stream_from_the_start_sends_everything_and_ends_after_the_terminal(
    harness: Harness, task_events: Callable
) -> None:
    t = task_events()
    run = t.run(steps=2)
    async with harness.replica() as replica:
        await _dispatch(replica, run)
        received = await asyncio.wait_for(
            read_stream(replica.url, t.task_id, harness.headers()), 10
        )
    assert [e["event"] for e in received] == RUN_TYPES
    assert [e["id"] for e in received] == ["1", "2", "3", "4", "5", "6"]
    first = received[0]["data"]
    assert first == {
        "type": "task.submitted",
        "seq": 1,
        "task_id": str(t.task_id),
        "occurred_at": run[0].metadata.occurred_at.isoformat().replace("+00:00", "Z"),
        "data": run[0].data.model_dump(mode="json"),
        "event_id": str(run[0].metadata.event_id),
    }


async def test_last_event_id_resumes_after_that_seq(
    harness: Harness, task_events: Callable
) -> None:
    t = task_events()
    async with harness.replica() as replica:
        await _dispatch(replica, t.run(steps=2))
        by_header = await read_stream(
            replica.url, t.task_id, harness.headers(**{"Last-Event-ID": "4"})
        )
        by_query = await read_stream(
            replica.url, t.task_id, harness.headers(), params={"last_event_id": "2"}
        )
    assert [e["id"] for e in by_header] == ["5", "6"]
    assert [e["id"] for e in by_query] == ["3", "4", "5", "6"]


async def test_a_subscriber_waiting_before_the_events_receives_them_live(
    harness: Harness, task_events: Callable
) -> None:
    t = task_events()
    # a minute between re-reads: within this test only Redis can deliver the events
    async with harness.replica(sse_resync_seconds=60) as replica:
        reading = asyncio.create_task(read_stream(replica.url, t.task_id, harness.headers()))

        async def subscribed() -> int:
            return await harness.subscribers(replica.env, t.task_id)

        await eventually(subscribed, within=10)
        for event in t.run(steps=2):
            await _dispatch(replica, [event])
            await asyncio.sleep(0.05)  # arrivals spread out, as in a real run
        received = await asyncio.wait_for(reading, 10)
    assert [e["event"] for e in received] == RUN_TYPES
    assert [e["data"]["seq"] for e in received] == [1, 2, 3, 4, 5, 6]


async def test_a_client_on_one_replica_sees_events_appended_by_another(
    harness: Harness, task_events: Callable
) -> None:
    t = task_events()
    async with (
        harness.replica(sse_resync_seconds=60) as replica_a,
        harness.replica(sse_resync_seconds=60) as replica_b,
    ):
        reading = asyncio.create_task(read_stream(replica_b.url, t.task_id, harness.headers()))

        async def b_listening() -> int:
            return replica_b.listening(t.task_id)

        await eventually(b_listening, within=10)
        await _dispatch(replica_a, t.run(steps=2))
        received = await asyncio.wait_for(reading, 10)
        assert replica_a.listening(t.task_id) == 0  # A never had a client for it
    assert [e["event"] for e in received] == RUN_TYPES


async def test_another_tenant_gets_404(harness: Harness, task_events: Callable) -> None:
    t = task_events(tenant_id="acme")
    async with harness.replica() as replica:
        await _dispatch(replica, [t.submitted()])
        async with httpx.AsyncClient(base_url=replica.url) as client:
            response = await client.get(
                f"/internal/tasks/{t.task_id}/events", headers=harness.headers("globex")
            )
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_heartbeat_comments_keep_an_idle_stream_alive(
    harness: Harness, task_events: Callable
) -> None:
    t = task_events()
    async with harness.replica(sse_heartbeat_seconds=0.2) as replica:
        await _dispatch(replica, [t.submitted()])
        lines: list[str] = []
        async with (
            httpx.AsyncClient(base_url=replica.url, timeout=10) as client,
            client.stream(
                "GET", f"/internal/tasks/{t.task_id}/events", headers=harness.headers()
            ) as response,
        ):
            async for line in response.aiter_lines():
                lines.append(line)
                if sum(1 for x in lines if x.startswith(":")) >= 2:
                    break
    assert lines[0] == "id: 1"
    assert lines[1] == "event: task.submitted"
    assert sum(1 for x in lines if x.startswith(":")) >= 2  # the stream is open, not ended


async def test_a_disconnecting_client_releases_the_subscription(
    harness: Harness, task_events: Callable
) -> None:
    t = task_events()
    async with harness.replica() as replica:
        await _dispatch(replica, [t.submitted()])
        async with (
            httpx.AsyncClient(base_url=replica.url, timeout=10) as client,
            client.stream(
                "GET", f"/internal/tasks/{t.task_id}/events", headers=harness.headers()
            ) as response,
        ):
            async for line in response.aiter_lines():
                if line.startswith("id:"):
                    break  # connected and streaming
            assert replica.listening(t.task_id) == 1
            assert await harness.subscribers(replica.env, t.task_id) == 1

        async def released() -> tuple[int, int]:
            return (
                replica.listening(t.task_id),
                await harness.subscribers(replica.env, t.task_id),
            )

        await eventually(released, until=lambda counts: counts == (0, 0), within=10)
