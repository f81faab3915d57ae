"""The timeline use cases over in-memory fakes: recording, dedupe, fan-out, the hold sweep."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest

from notifier.service import Notifier, TenantMismatch

from .conftest import HOLD_SECONDS
from .fakes import Fakes


async def test_shuffled_events_are_stored_and_published_in_seq_order(
    fakes: Fakes, notifier: Notifier, task_events: Callable
) -> None:
    t = task_events()
    run = t.run(steps=4)
    shuffled = run[:]
    random.Random(7).shuffle(shuffled)
    for event in shuffled:
        await notifier.timelines.record(event)
    stored = fakes.store.rows[t.task_id].events
    assert [e.seq for e in stored] == list(range(1, len(run) + 1))
    assert stored[0].type == "task.submitted"
    assert stored[-1].type == "task.succeeded"
    assert fakes.feed.published == stored  # every append is published once, in order


async def test_a_repeated_event_changes_nothing(
    fakes: Fakes, notifier: Notifier, task_events: Callable
) -> None:
    t = task_events()
    submitted, started, held_step = t.submitted(), t.started(), t.progressed(2)
    for event in [submitted, started, held_step]:
        await notifier.timelines.record(event)
    before = list(fakes.store.rows[t.task_id].events)
    for event in [submitted, started, held_step]:
        assert await notifier.timelines.record(event) == []
    assert fakes.store.rows[t.task_id].events == before
    assert list(fakes.store.rows[t.task_id].held) == [held_step.metadata.event_id]
    assert len(fakes.feed.published) == 2


async def test_a_late_event_repeated_is_still_a_no_op(
    fakes: Fakes, notifier: Notifier, task_events: Callable
) -> None:
    t = task_events()
    await notifier.timelines.record(t.submitted())
    await notifier.timelines.record(t.cancelled(attempt=0))
    late = t.cancel_requested()
    assert await notifier.timelines.record(late) == []
    assert await notifier.timelines.record(late) == []
    assert list(fakes.store.rows[t.task_id].late) == [late.metadata.event_id]
    assert fakes.store.timeline_types(t.task_id) == ["task.submitted", "task.cancelled"]


async def test_concurrent_deliveries_never_collide_on_seq(
    fakes: Fakes, notifier: Notifier, task_events: Callable
) -> None:
    t = task_events()
    run = t.run(steps=10)
    await asyncio.gather(*(notifier.timelines.record(e) for e in [*run, *run]))  # each twice
    assert [e.seq for e in fakes.store.rows[t.task_id].events] == list(range(1, len(run) + 1))


async def test_a_failed_live_publish_keeps_the_durable_append(
    fakes: Fakes, notifier: Notifier, task_events: Callable
) -> None:
    t = task_events()
    fakes.feed.broken = True
    appended = await notifier.timelines.record(t.submitted())
    assert [e.seq for e in appended] == [1]
    assert fakes.store.timeline_types(t.task_id) == ["task.submitted"]


async def test_an_event_for_another_tenants_task_is_refused(
    fakes: Fakes, notifier: Notifier, task_events: Callable
) -> None:
    t = task_events(tenant_id="acme")
    await notifier.timelines.record(t.submitted())
    intruder = task_events(tenant_id="globex", task_id=t.task_id)
    with pytest.raises(TenantMismatch):
        await notifier.timelines.record(intruder.started())
    assert fakes.store.timeline_types(t.task_id) == ["task.submitted"]


async def test_the_sweep_releases_only_after_the_hold_limit(
    fakes: Fakes, notifier: Notifier, task_events: Callable
) -> None:
    t = task_events()
    await notifier.timelines.record(t.submitted())
    await notifier.timelines.record(t.started())
    await notifier.timelines.record(t.succeeded(artifact_ids=[uuid.uuid4()]))  # never published
    fakes.clock.advance(HOLD_SECONDS - 1)
    assert await notifier.timelines.release_overdue() == []
    fakes.clock.advance(2)
    released = await notifier.timelines.release_overdue()
    assert [(e.seq, e.type) for e in released] == [(3, "task.succeeded")]
    assert fakes.feed.published[-1] == released[0]
    assert fakes.store.rows[t.task_id].held == {}


async def test_the_sweep_waits_a_hold_limit_after_messages_handed_back_are_due(
    fakes: Fakes, notifier: Notifier, task_events: Callable
) -> None:
    # step 1 was deferred by an outage and waits on the queue: its successors are held
    t = task_events()
    for event in [t.submitted(), t.started(), t.progressed(2), t.succeeded(steps=2)]:
        await notifier.timelines.record(event)
    step_one_due = fakes.clock() + timedelta(seconds=HOLD_SECONDS / 2)
    fakes.clock.advance(HOLD_SECONDS + 1)  # held past the limit, but the queue is not settled
    assert await notifier.timelines.release_overdue(handed_back_until=step_one_due) == []
    await notifier.timelines.record(t.progressed(1))  # it came back: all in order
    assert fakes.store.timeline_types(t.task_id) == [
        "task.submitted",
        "task.started",
        "task.progressed",
        "task.progressed",
        "task.succeeded",
    ]
    assert [e.data["step"] for e in fakes.store.rows[t.task_id].events[2:4]] == [1, 2]


async def test_a_predecessor_that_never_comes_is_released_a_hold_limit_after_the_queue_settled(
    fakes: Fakes, notifier: Notifier, task_events: Callable
) -> None:
    t = task_events()
    for event in [t.submitted(), t.started(), t.progressed(2)]:
        await notifier.timelines.record(event)
    due = fakes.clock() + timedelta(seconds=5)
    fakes.clock.advance(5 + HOLD_SECONDS - 1)
    assert await notifier.timelines.release_overdue(handed_back_until=due) == []
    fakes.clock.advance(2)
    released = await notifier.timelines.release_overdue(handed_back_until=due)
    assert [(e.seq, e.type) for e in released] == [(3, "task.progressed")]
