"""The WebSocket API's connections on the API Gateway edge (edge.py) on the in-memory fakes:
what each connection is sent, in order, whatever triggers the sending."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest

from notifier.app import build
from notifier.edge import EdgeDelivery, UnknownConnection
from notifier.service import Notifier
from notifier.timeline import TimelineEntry
from relay_shared.events import DomainEvent

from .conftest import unit_settings
from .fakes import Fakes

pytestmark = pytest.mark.timeout(30)


def _notifier(fakes: Fakes, **settings: Any) -> tuple[Notifier, EdgeDelivery]:
    notifier = build(unit_settings(**settings), fakes.ports(edge=True))
    assert notifier.edge is not None
    return notifier, notifier.edge


async def _record(notifier: Notifier, events: list[DomainEvent]) -> None:
    for event in events:
        await notifier.timelines.record(event)
    assert notifier.edge is not None
    await notifier.edge.idle()


async def _frame(edge: EdgeDelivery, connection: str, tenant: str = "acme", **frame: Any) -> None:
    text = json.dumps({k: str(v) if isinstance(v, UUID) else v for k, v in frame.items()})
    await edge.receive(connection, tenant, text, None)
    await edge.idle()


def _seqs(fakes: Fakes, connection: str, task_id: UUID | None = None) -> list[int]:
    return [
        f["seq"]
        for f in fakes.poster.frames.get(connection, [])
        if "seq" in f and (task_id is None or f["task_id"] == str(task_id))
    ]


async def test_history_then_live_then_end_in_order(fakes: Fakes, task_events: Callable) -> None:
    notifier, edge = _notifier(fakes)
    t = task_events()
    run = t.run(steps=2)
    await _record(notifier, run[:3])
    await edge.connect("c1", "acme")
    await _frame(edge, "c1", type="subscribe", task_id=t.task_id)
    await _record(notifier, run[3:])

    frames = fakes.poster.frames["c1"]
    assert frames[0] == {"type": "subscribed", "task_id": str(t.task_id)}
    assert _seqs(fakes, "c1") == [1, 2, 3, 4, 5, 6]
    assert frames[-1] == {"type": "end", "task_id": str(t.task_id)}
    assert fakes.edge.live_cursors() == {}  # the ended subscription sends no more


async def test_appends_racing_each_other_never_send_an_event_twice(
    fakes: Fakes, task_events: Callable
) -> None:
    """Many appends while a slow post holds the lease: one sender at a time, and the last
    append's sender, finding the lease taken, is covered by the holder's look after release."""
    notifier, edge = _notifier(fakes)
    t = task_events()
    run = t.run(steps=6)
    await _record(notifier, run[:1])
    await edge.connect("c1", "acme")
    await _frame(edge, "c1", type="subscribe", task_id=t.task_id)
    fakes.poster.pause.clear()  # posts stall: every append below finds the lease taken
    for event in run[1:]:
        await notifier.timelines.record(event)
    await asyncio.sleep(0.01)
    fakes.poster.pause.set()
    await edge.idle()
    assert _seqs(fakes, "c1") == list(range(1, len(run) + 1))
    assert fakes.poster.frames["c1"][-1]["type"] == "end"


async def test_resync_sends_what_a_lost_trigger_left(fakes: Fakes, task_events: Callable) -> None:
    notifier, edge = _notifier(fakes)
    t = task_events()
    run = t.run(steps=1)
    await edge.connect("c1", "acme")
    await _record(notifier, run[:1])
    await _frame(edge, "c1", type="subscribe", task_id=t.task_id)
    # appended without the edge hearing of it (as if the replica died right after commit)
    for event in run[1:]:
        async with fakes.store.locked(t.task_id, "acme") as locked:
            locked.timeline.offer(TimelineEntry.from_event(event), now=fakes.clock())
    assert _seqs(fakes, "c1") == [1]
    await edge.resync()
    await edge.idle()
    assert _seqs(fakes, "c1") == list(range(1, len(run) + 1))


async def test_a_gone_connection_is_removed_with_everything_of_it(
    fakes: Fakes, task_events: Callable
) -> None:
    notifier, edge = _notifier(fakes)
    t = task_events()
    run = t.run(steps=2)
    await _record(notifier, run[:2])
    await edge.connect("c1", "acme")
    await _frame(edge, "c1", type="subscribe", task_id=t.task_id)
    await _frame(edge, "c1", type="subscribe", task_id="*")
    assert fakes.edge.cursors
    fakes.poster.gone.add("c1")
    await _record(notifier, run[2:3])
    assert "c1" not in fakes.edge.tenants
    assert fakes.edge.cursors == {}
    assert fakes.edge.all_tasks == {}
    with pytest.raises(UnknownConnection):
        await edge.receive("c1", "acme", '{"type": "ping"}', None)


async def test_another_tenant_cannot_use_or_close_a_connection(fakes: Fakes) -> None:
    _, edge = _notifier(fakes)
    await edge.connect("c1", "acme")
    with pytest.raises(UnknownConnection):
        await edge.receive("c1", "globex", '{"type": "ping"}', None)
    await edge.disconnect("c1", "globex")
    assert fakes.edge.tenants == {"c1": "acme"}
    await edge.disconnect("c1", "acme")
    assert fakes.edge.tenants == {}


async def test_refusals_errors_and_limits_are_frames(fakes: Fakes, task_events: Callable) -> None:
    notifier, edge = _notifier(fakes, ws_max_subscriptions=2)
    theirs = task_events(tenant_id="globex")
    await _record(notifier, theirs.run(steps=1)[:1])
    a, b, c = task_events(), task_events(), task_events()
    for t in (a, b, c):
        await _record(notifier, t.run(steps=1)[:1])
    await edge.connect("c1", "acme")
    refusal = {"status": 404, "title": "Not Found", "detail": "No task."}
    await edge.receive(
        "c1", "acme", json.dumps({"type": "subscribe", "task_id": str(a.task_id)}), refusal
    )
    await _frame(edge, "c1", type="subscribe", task_id=theirs.task_id)  # the gateway missed it
    await _frame(edge, "c1", type="nonsense")
    await _frame(edge, "c1", type="subscribe", task_id="*", after=3)
    await _frame(edge, "c1", type="subscribe", task_id=a.task_id)
    await _frame(edge, "c1", type="subscribe", task_id=a.task_id)
    await _frame(edge, "c1", type="subscribe", task_id=b.task_id)
    await _frame(edge, "c1", type="subscribe", task_id=c.task_id)
    await _frame(edge, "c1", type="unsubscribe", task_id=b.task_id)
    await _frame(edge, "c1", type="ping")
    control = [(f["type"], f.get("status")) for f in fakes.poster.frames["c1"] if "seq" not in f]
    assert control == [
        ("error", 404),  # the gateway's refusal
        ("error", 404),  # another tenant's timeline
        ("error", 400),  # unreadable
        ("error", 400),  # `*` has no history
        ("subscribed", None),
        ("error", 409),  # already
        ("subscribed", None),
        ("error", 429),  # two at most
        ("unsubscribed", None),
        ("pong", None),
    ]
    assert set(_seqs(fakes, "c1")) == {1}
    assert {key[1] for key in fakes.edge.cursors} == {a.task_id}


async def test_all_tasks_follows_each_task_from_its_next_append_without_end(
    fakes: Fakes, task_events: Callable
) -> None:
    notifier, edge = _notifier(fakes)
    early, late = task_events(), task_events()
    early_run, late_run = early.run(steps=1), late.run(steps=1)
    await _record(notifier, early_run[:2])
    await edge.connect("c1", "acme")
    await _frame(edge, "c1", type="subscribe", task_id="*")
    await _record(notifier, early_run[2:])
    await _record(notifier, late_run)
    await _record(notifier, task_events(tenant_id="globex").run(steps=1))

    assert _seqs(fakes, "c1", early.task_id) == list(range(3, len(early_run) + 1))
    assert _seqs(fakes, "c1", late.task_id) == list(range(1, len(late_run) + 1))
    assert len(_seqs(fakes, "c1")) == len(early_run) - 2 + len(late_run)  # none of globex's
    assert not [f for f in fakes.poster.frames["c1"] if f["type"] == "end"]
    assert fakes.edge.live_cursors() == {}  # each task's cursor ended with its terminal event


async def test_a_fan_out_arriving_after_the_terminal_event_sends_nothing_again(
    fakes: Fakes, task_events: Callable
) -> None:
    """An append's fan-out runs after its commit, in the background: one for seqs 5-6 can
    start after a sender for seqs 1-4 already went on to post 5 and 6 and end the task. The
    late one must not make a new `*` cursor at seq 4 and post 5 and 6 again (seen in CI)."""
    _, edge = _notifier(fakes)
    t = task_events()
    await edge.connect("c1", "acme")
    await _frame(edge, "c1", type="subscribe", task_id="*")
    for event in t.run(steps=2):  # appended; the edge is told of the first append only
        async with fakes.store.locked(t.task_id, "acme") as locked:
            locked.timeline.offer(TimelineEntry.from_event(event), now=fakes.clock())
    stored = await fakes.store.events_after(t.task_id, "acme", 0, limit=100)
    assert stored[-1].terminal
    await edge.publish(stored[:1])
    await edge.idle()
    everything = [e.seq for e in stored]
    assert _seqs(fakes, "c1") == everything
    await edge.publish(stored[-2:])  # the late fan-out of the last append
    await edge.resync()
    await edge.idle()
    assert _seqs(fakes, "c1") == everything


async def test_an_explicit_subscription_takes_over_the_tasks_cursor_from_all_tasks(
    fakes: Fakes, task_events: Callable
) -> None:
    notifier, edge = _notifier(fakes)
    t = task_events()
    run = t.run(steps=2)
    await edge.connect("c1", "acme")
    await _frame(edge, "c1", type="subscribe", task_id="*")
    await _record(notifier, run[:3])
    await _frame(edge, "c1", type="subscribe", task_id=t.task_id)  # history again, then end
    await _record(notifier, run[3:])
    assert _seqs(fakes, "c1") == [1, 2, 3, 1, 2, 3, 4, 5, 6]
    assert fakes.poster.frames["c1"][-1] == {"type": "end", "task_id": str(t.task_id)}
    await _frame(edge, "c1", type="unsubscribe", task_id="*")
    assert fakes.edge.all_tasks == {}
