"""Redelivery safety: a run is held under a lease; a delivery of a held task is deferred, never
acknowledged; an expired lease is taken over as the next attempt; a finished run never re-runs."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from pydantic import ValidationError

from agent.leases import keep_lease
from agent.providers.scripted import ScriptedProvider
from agent.running import RunningAttempts, StopCause
from agent.settings import AgentSettings
from relay_shared.consumer import Defer
from relay_shared.events import TaskLimits

from .fakes import UnreachableRuns

WITHIN = 5


async def _held_by_worker_2(h, event, *, wall: float = 1800, lease: float = 60) -> None:
    async with h.runs.transaction() as tx:
        await tx.claim(
            event.metadata.task_id,
            "acme",
            worker_id="worker-2",
            lease_seconds=lease,
            wall_seconds=wall,
            submitted={},
        )


async def test_a_delivery_of_a_held_task_is_deferred_until_the_holder_must_be_done(
    harness, recording, make_submitted
) -> None:
    provider = recording(ScriptedProvider())
    h = harness(provider)
    event = make_submitted("/steps 1")
    await _held_by_worker_2(h, event, wall=600, lease=60)

    with pytest.raises(Defer) as deferred:
        await h.service.runner.run(event)

    # the later of the holder's lease and its wall-time budget, plus a few seconds
    assert deferred.value.delay_seconds == 603
    assert provider.requests == []
    assert h.runs.events == []


async def test_a_held_task_with_little_wall_time_left_waits_for_the_lease(
    harness, recording, make_submitted
) -> None:
    h = harness(recording(ScriptedProvider()))
    event = make_submitted()
    await _held_by_worker_2(h, event, wall=10, lease=60)

    with pytest.raises(Defer) as deferred:
        await h.service.runner.run(event)
    assert deferred.value.delay_seconds == 63


async def test_an_expired_lease_is_taken_over_as_the_next_attempt(
    harness, recording, make_submitted
) -> None:
    provider = recording(ScriptedProvider())
    h = harness(provider)
    event = make_submitted("/steps 1")
    await _held_by_worker_2(h, event)
    h.clock.now += 61  # worker-2 died: nobody renewed its lease

    await h.service.runner.run(event)

    assert h.runs.names() == [
        "task.started",
        "task.progressed",
        "artifact.uploaded",
        "task.succeeded",
    ]
    assert h.runs.events[0].data.attempt == 2
    assert h.runs.rows[event.metadata.task_id]["lease_owner"] == "worker-1"


async def test_an_attempt_that_loses_its_lease_stops_and_emits_nothing_more(
    harness, blocked, make_submitted
) -> None:
    provider = blocked()
    h = harness(provider, run_lease_seconds=0.3)  # renewed every 0.1 s
    event = make_submitted()
    handler = asyncio.create_task(h.service.runner.run(event))
    await asyncio.wait_for(provider.called.wait(), WITHIN)

    h.clock.now += 3600  # the lease ran out (a long pause) and worker-2 took the run over
    await _held_by_worker_2(h, event)

    # never acknowledged: the task is worker-2's now, and this delivery must not vanish
    with pytest.raises(Defer):
        await asyncio.wait_for(handler, WITHIN)
    assert provider.cancelled.is_set()
    assert h.runs.names() == ["task.started"]
    assert h.runs.rows[event.metadata.task_id]["attempt"] == 2


async def test_a_lease_not_renewed_in_time_stops_the_attempt() -> None:
    now = [0.0]
    naps: list[float] = []

    async def nap(seconds: float) -> None:
        naps.append(seconds)
        now[0] += seconds

    work = asyncio.create_task(asyncio.sleep(60))
    with RunningAttempts().register(uuid.uuid4(), 1, work) as running:
        await keep_lease(
            UnreachableRuns(),
            running,
            owner="worker-1",
            lease_seconds=30,
            clock=lambda: now[0],
            sleep=nap,
        )
    # tries at 0, 10 and 20 s; at 20 the next try would come too late: stop before 30
    assert naps == [10, 10]
    assert running.stop is StopCause.LEASE_LOST
    with pytest.raises(asyncio.CancelledError):
        await work


async def test_a_finished_run_is_acknowledged_without_a_model_call(
    harness, recording, make_submitted
) -> None:
    provider = recording(ScriptedProvider())
    h = harness(provider)
    event = make_submitted("/steps 1")
    await h.service.runner.run(event)
    calls = len(provider.requests)

    await h.service.runner.run(event)  # no Defer, no error: the message is deleted

    assert len(provider.requests) == calls


async def test_the_claim_stores_the_submitted_task_and_its_deadline(
    harness, recording, make_submitted
) -> None:
    h = harness(recording(ScriptedProvider()))
    limits = TaskLimits(max_turns=3, max_output_tokens=100, max_wall_seconds=42)
    event = make_submitted("/steps 1", limits=limits)
    await h.service.runner.run(event)

    row = h.runs.rows[event.metadata.task_id]
    assert row["submitted"]["limits"]["max_wall_seconds"] == 42
    assert row["deadline_at"] == h.clock.now + 42


def test_the_lease_must_stay_below_the_visibility_timeout() -> None:
    with pytest.raises(ValidationError, match="RELAY_RUN_LEASE_SECONDS"):
        AgentSettings(run_lease_seconds=120, consumer_visibility_timeout=120)
    assert AgentSettings(run_lease_seconds=119, consumer_visibility_timeout=120)
