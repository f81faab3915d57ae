"""Timelines in real PostgreSQL through the app's handlers: order, dedupe, locks, the hold."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable

import pytest

from .conftest import Harness, read_stream

pytestmark = pytest.mark.integration


async def test_shuffled_events_read_in_causal_order_with_seq_1_to_n(
    harness: Harness, task_events: Callable
) -> None:
    t = task_events()
    run = t.run(steps=4)
    artifact = run[-2]
    arrival = [e for e in run if e is not artifact]
    random.Random(3).shuffle(arrival)
    async with harness.replica() as replica:
        for event in [*arrival, artifact]:  # the artifact comes last, after the terminal
            await replica.dispatch(event)
    rows = await harness.rows(
        "SELECT seq, type, event_id FROM timeline_events WHERE task_id = %s ORDER BY seq",
        t.task_id,
    )
    assert [r[1] for r in rows] == [
        "task.submitted",
        "task.started",
        *["task.progressed"] * 4,
        "artifact.published",
        "task.succeeded",
    ]
    assert [r[0] for r in rows] == list(range(1, 9))
    assert [r[2] for r in rows] == [e.metadata.event_id for e in run]
    assert await harness.rows("SELECT * FROM held_events") == []


async def test_concurrent_and_repeated_deliveries_stay_gapless(
    harness: Harness, task_events: Callable
) -> None:
    t = task_events()
    run = t.run(steps=8)
    deliveries = [*run, *run]  # everything twice, all at once, in random order
    random.Random(5).shuffle(deliveries)
    async with harness.replica(db_pool_max=8) as replica:
        dispatch = replica.dispatch
        await asyncio.gather(*(dispatch(e) for e in deliveries))
    rows = await harness.rows(
        "SELECT seq, type FROM timeline_events WHERE task_id = %s ORDER BY seq", t.task_id
    )
    assert [r[0] for r in rows] == list(range(1, len(run) + 1))
    assert rows[0][1] == "task.submitted"
    assert rows[-1][1] == "task.succeeded"
    assert await harness.rows("SELECT last_seq, terminal_seq FROM timelines") == [
        (len(run), len(run))
    ]


async def test_the_same_event_twice_changes_nothing(
    harness: Harness, task_events: Callable
) -> None:
    t = task_events()
    run = t.run(steps=2)
    held = t.progressed(1, attempt=2)  # stays held: attempt 2 never starts
    snapshot = (
        "SELECT (SELECT json_agg(e ORDER BY seq) FROM timeline_events e),"
        " (SELECT json_agg(h.event_id) FROM held_events h),"
        " (SELECT json_agg(l.event_id) FROM late_events l),"
        " (SELECT json_agg(t) FROM timelines t)"
    )
    async with harness.replica() as replica:
        dispatch = replica.dispatch
        for event in [*run[:-1], held]:
            await dispatch(event)
        before = await harness.rows(snapshot)
        for event in [*run[:-1], held]:
            await dispatch(event)
        assert await harness.rows(snapshot) == before
        await dispatch(run[-1])  # the terminal: the stray held step becomes late
        await dispatch(t.cancel_requested())  # late too
        after_terminal = await harness.rows(snapshot)
        await dispatch(run[-1])
        await dispatch(held)
        assert await harness.rows(snapshot) == after_terminal
    late = await harness.rows("SELECT type FROM late_events ORDER BY recorded_at, type")
    assert sorted(r[0] for r in late) == ["task.cancel_requested", "task.progressed"]


async def test_the_hold_limit_releases_a_terminal_whose_artifact_never_arrives(
    harness: Harness, task_events: Callable
) -> None:
    t = task_events()
    lost_artifact = uuid.uuid4()  # e.g. rejected by verification: never published
    async with harness.replica(
        timeline_hold_seconds=0.5,
        timeline_sweep_interval_seconds=0.1,
        consumer_visibility_timeout=5,  # the sweeper waits that long after a start
    ) as replica:
        dispatch = replica.dispatch
        for event in [
            t.submitted(),
            t.started(),
            t.progressed(1),
            t.succeeded(steps=1, artifact_ids=[lost_artifact]),
        ]:
            await dispatch(event)
        # a client following from the start sees the terminal once released, then the end
        received = await asyncio.wait_for(
            read_stream(replica.url, t.task_id, harness.headers()), 15
        )
    assert [(e["id"], e["event"]) for e in received] == [
        ("1", "task.submitted"),
        ("2", "task.started"),
        ("3", "task.progressed"),
        ("4", "task.succeeded"),
    ]
    assert await harness.rows("SELECT * FROM held_events") == []
    # it was held: appended by the sweeper no sooner than the hold limit after the last step
    [(waited,)] = await harness.rows(
        "SELECT extract(epoch FROM max(appended_at) - min(appended_at)) FROM timeline_events"
        " WHERE seq IN (3, 4)"
    )
    assert float(waited) >= 0.45
