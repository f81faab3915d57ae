"""A live connection's subscriptions (session.py) on the in-memory fakes: the frames a client
sends and what it gets back, in order."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest

from notifier.app import build
from notifier.service import Notifier
from notifier.session import LiveSession
from relay_devkit.testing import eventually
from relay_shared.events import DomainEvent

from .conftest import unit_settings
from .fakes import Fakes

pytestmark = pytest.mark.timeout(30)


def _notifier(fakes: Fakes, **settings: Any) -> Notifier:
    values = {"sse_resync_seconds": 60, **settings}  # live only: re-reads would take a minute
    return build(unit_settings(**values), fakes.ports())


async def _record(notifier: Notifier, events: list[DomainEvent]) -> None:
    for event in events:
        await notifier.timelines.record(event)


async def _send(session: LiveSession, **frame: Any) -> None:
    await session.receive(
        json.dumps({key: str(v) if isinstance(v, UUID) else v for key, v in frame.items()})
    )


async def _next(session: LiveSession) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(session.outbox.get(), 2))
    return frame


async def _until(session: LiveSession, kind: str, task_id: UUID | str) -> list[dict[str, Any]]:
    """Every frame up to and including the first ``kind`` frame for ``task_id``."""
    frames = []
    while True:
        frame = await _next(session)
        frames.append(frame)
        if frame["type"] == kind and frame.get("task_id") == str(task_id):
            return frames


async def _listening(fakes: Fakes, channel: UUID | str) -> None:
    async def listeners() -> int:
        return len(fakes.feed.listeners.get(channel, []))

    await eventually(listeners, within=2, interval=0.001)


async def test_a_subscription_sends_history_then_live_then_end(
    fakes: Fakes, task_events: Callable
) -> None:
    notifier = _notifier(fakes)
    t = task_events()
    run = t.run(steps=2)
    await _record(notifier, run[:3])
    session = notifier.session("acme")
    await _send(session, type="subscribe", task_id=t.task_id)
    assert await _next(session) == {"type": "subscribed", "task_id": str(t.task_id)}
    await _listening(fakes, t.task_id)
    await _record(notifier, run[3:])
    frames = await _until(session, "end", t.task_id)
    events = [f for f in frames if "seq" in f]
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5, 6]
    assert events[-1]["type"] == "task.succeeded"
    # exactly the JSON of an SSE data: line
    stored = await fakes.store.events_after(t.task_id, "acme", 0, limit=10)
    assert [json.dumps(e, sort_keys=True) for e in events] == [
        json.dumps(json.loads(s.client_json), sort_keys=True) for s in stored
    ]
    assert session.subscriptions == 0  # an ended subscription is gone
    await session.close()


async def test_after_skips_what_the_client_has(fakes: Fakes, task_events: Callable) -> None:
    notifier = _notifier(fakes)
    t = task_events()
    await _record(notifier, t.run(steps=2))
    session = notifier.session("acme")
    await _send(session, type="subscribe", task_id=t.task_id, after=4)
    frames = await _until(session, "end", t.task_id)
    assert [f.get("seq") for f in frames] == [None, 5, 6, None]


async def test_a_finished_timeline_answers_subscribed_then_end(
    fakes: Fakes, task_events: Callable
) -> None:
    notifier = _notifier(fakes)
    t = task_events()
    await _record(notifier, t.run(steps=1))
    session = notifier.session("acme")
    await _send(session, type="subscribe", task_id=t.task_id, after=5)
    assert [f["type"] for f in await _until(session, "end", t.task_id)] == ["subscribed", "end"]


async def test_another_tenants_task_is_not_found_and_stays_unsubscribed(
    fakes: Fakes, task_events: Callable
) -> None:
    notifier = _notifier(fakes)
    t = task_events(tenant_id="globex")
    await _record(notifier, t.run(steps=1))
    session = notifier.session("acme")
    await _send(session, type="subscribe", task_id=t.task_id)
    frame = await _next(session)
    assert (frame["type"], frame["status"], frame["task_id"]) == ("error", 404, str(t.task_id))
    assert session.subscriptions == 0


async def test_the_tenant_subscription_sends_every_task_of_the_tenant_only(
    fakes: Fakes, task_events: Callable
) -> None:
    notifier = _notifier(fakes)
    session = notifier.session("acme")
    await _send(session, type="subscribe", task_id="*")
    assert await _next(session) == {"type": "subscribed", "task_id": "*"}
    await _listening(fakes, "acme")
    mine, theirs, also_mine = task_events(), task_events(tenant_id="globex"), task_events()
    await _record(notifier, mine.run(steps=1))
    await _record(notifier, theirs.run(steps=1))
    await _record(notifier, also_mine.run(steps=1))
    frames = [await _next(session) for _ in range(10)]
    by_task: dict[str, list[int]] = {}
    for frame in frames:
        by_task.setdefault(frame["task_id"], []).append(frame["seq"])
    assert by_task == {str(mine.task_id): [1, 2, 3, 4, 5], str(also_mine.task_id): [1, 2, 3, 4, 5]}
    assert session.outbox.overflowed.is_set() is False
    await session.close()
    assert fakes.feed.listeners["acme"] == []  # closing released the feed


async def test_a_task_with_its_own_subscription_is_not_sent_twice_by_the_tenant_one(
    fakes: Fakes, task_events: Callable
) -> None:
    notifier = _notifier(fakes)
    t = task_events()
    session = notifier.session("acme")
    await _send(session, type="subscribe", task_id="*")
    await _send(session, type="subscribe", task_id=t.task_id)
    await _listening(fakes, "acme")
    await _listening(fakes, t.task_id)
    await _record(notifier, t.run(steps=1))
    frames = await _until(session, "end", t.task_id)
    await asyncio.sleep(0.05)  # the tenant subscription had its chance to repeat something
    seqs = [f["seq"] for f in frames if "seq" in f] + [
        json.loads(session.outbox.get_nowait())["seq"] for _ in range(len(session.outbox))
    ]
    assert seqs == [1, 2, 3, 4, 5]
    await session.close()


async def test_a_gap_in_the_tenants_live_events_is_filled_from_the_store(
    fakes: Fakes, task_events: Callable
) -> None:
    notifier = _notifier(fakes)
    t = task_events()
    run = t.run(steps=2)
    session = notifier.session("acme")
    await _send(session, type="subscribe", task_id="*")
    assert (await _next(session))["type"] == "subscribed"
    await _listening(fakes, "acme")
    await _record(notifier, run[:2])
    fakes.feed.broken = True  # seq 3 and 4 reach the store but not the feed
    await _record(notifier, run[2:4])
    fakes.feed.broken = False
    await _record(notifier, run[4:])
    frames = [await _next(session) for _ in range(6)]
    assert [f["seq"] for f in frames] == [1, 2, 3, 4, 5, 6]
    await session.close()


async def test_unsubscribing_stops_the_events(fakes: Fakes, task_events: Callable) -> None:
    notifier = _notifier(fakes)
    t = task_events()
    run = t.run(steps=2)
    await _record(notifier, run[:1])
    session = notifier.session("acme")
    await _send(session, type="subscribe", task_id=t.task_id)
    assert [f.get("seq") for f in [await _next(session) for _ in range(2)]] == [None, 1]
    await _send(session, type="unsubscribe", task_id=t.task_id)
    assert await _next(session) == {"type": "unsubscribed", "task_id": str(t.task_id)}
    await _record(notifier, run[1:])
    await asyncio.sleep(0.05)
    assert len(session.outbox) == 0
    assert fakes.feed.listeners[t.task_id] == []


# fixed, not uuid4(): a test's id must be the same in every pytest-xdist worker's collection
FIXED_TASK = "5f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json", "Invalid JSON"),
        ("[1, 2]", "frame"),
        ('{"type": "dance"}', "type"),
        ('{"type": "subscribe"}', "task_id"),
        ('{"type": "subscribe", "task_id": "nope"}', "task_id"),
        ('{"type": "subscribe", "task_id": "*", "after": 3}', "history"),
        (json.dumps({"type": "subscribe", "task_id": FIXED_TASK, "after": -1}), "after"),
    ],
)
async def test_a_bad_frame_gets_an_error_and_the_session_stays_usable(
    fakes: Fakes, text: str, says: str
) -> None:
    session = _notifier(fakes).session("acme")
    await session.receive(text)
    frame = await _next(session)
    assert (frame["type"], frame["status"]) == ("error", 400)
    assert says in frame["detail"]
    await _send(session, type="ping")
    assert await _next(session) == {"type": "pong"}
    assert session.subscriptions == 0


async def test_subscriptions_are_capped_and_repeats_refused(
    fakes: Fakes, task_events: Callable
) -> None:
    notifier = _notifier(fakes, ws_max_subscriptions=2)
    tasks = [task_events() for _ in range(3)]
    for t in tasks:
        await _record(notifier, t.run(steps=1)[:1])
    session = notifier.session("acme")
    for t in tasks:
        await _send(session, type="subscribe", task_id=t.task_id)
    await _send(session, type="subscribe", task_id=tasks[0].task_id)
    frames = [await _next(session) for _ in range(6)]
    errors = [(f["task_id"], f["status"]) for f in frames if f["type"] == "error"]
    assert errors == [(str(tasks[2].task_id), 429), (str(tasks[0].task_id), 409)]
    assert session.subscriptions == 2
    await session.close()


async def test_a_history_longer_than_the_queue_reaches_a_reader_that_keeps_reading(
    fakes: Fakes, task_events: Callable
) -> None:
    notifier = _notifier(fakes, ws_send_queue_frames=3, ws_send_timeout_seconds=1)
    t = task_events()
    await _record(notifier, t.run(steps=8))
    session = notifier.session("acme")
    await _send(session, type="subscribe", task_id=t.task_id)
    frames = await _until(session, "end", t.task_id)
    assert [f["seq"] for f in frames if "seq" in f] == list(range(1, 13))
    assert not session.outbox.overflowed.is_set()


async def test_a_reader_that_stops_reading_overflows_the_outbox_after_the_timeout(
    fakes: Fakes, task_events: Callable
) -> None:
    notifier = _notifier(fakes, ws_send_queue_frames=3, ws_send_timeout_seconds=0.2)
    t = task_events()
    await _record(notifier, t.run(steps=2))
    session = notifier.session("acme")
    await _send(session, type="subscribe", task_id=t.task_id)  # 1 + 6 events + end > 3
    await asyncio.sleep(0.1)
    assert not session.outbox.overflowed.is_set()  # waiting for room, not yet given up
    await asyncio.wait_for(session.outbox.overflowed.wait(), 2)
    assert len(session.outbox) == 3
    await session.close()


async def test_a_subscription_that_cannot_read_fails_alone(
    fakes: Fakes, task_events: Callable
) -> None:
    notifier = _notifier(fakes)
    t = task_events()
    await _record(notifier, t.run(steps=1))
    session = notifier.session("acme")
    await _send(session, type="subscribe", task_id="*")
    assert (await _next(session))["type"] == "subscribed"
    fakes.store.unreadable = True
    await _send(session, type="subscribe", task_id=t.task_id)
    frame = await _next(session)
    assert (frame["type"], frame["status"], frame["task_id"]) == ("error", 503, str(t.task_id))
    fakes.store.unreadable = False
    assert session.subscriptions == 1  # `*` is still there
    await _send(session, type="subscribe", task_id=t.task_id)
    assert [f.get("seq") for f in await _until(session, "end", t.task_id)][-2] == 5
    await session.close()
