"""Runs whose worker died or whose dependency went away are not lost: the lease is released for
the redelivery, and the recovery sweeper re-runs stale runs whose message is gone."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from agent.providers.scripted import ScriptedProvider
from relay_devkit.testing import eventually
from relay_shared.events import TaskSubmitted

from .fakes import S3Outage


async def test_an_s3_outage_during_a_run_releases_the_lease_for_the_redelivery(
    harness, make_submitted
) -> None:
    h = harness(ScriptedProvider())
    h.fakes.staging = S3Outage()
    service = h.replica(ScriptedProvider(), "worker-1")
    event = make_submitted("Report\n/steps 1")

    with pytest.raises(EndpointConnectionError):
        await service.runner.run(event)
    row = h.runs.rows[event.metadata.task_id]
    assert row["status"] == "running"
    assert row["lease_expires_at"] <= h.clock.now  # released: the redelivery need not wait

    await service.runner.run(event)  # the redelivery, S3 back

    assert h.runs.rows[event.metadata.task_id]["status"] == "succeeded"
    assert [e.name for e in h.runs.terminal()] == ["task.succeeded"]
    assert h.runs.terminal()[0].data.attempt == 2


async def _died_holding(h: Any, event: TaskSubmitted) -> None:
    async with h.runs.transaction() as tx:
        await tx.claim(
            event.metadata.task_id,
            "acme",
            worker_id="dead-worker",
            lease_seconds=60,
            wall_seconds=600,
            submitted=event.data.model_dump(mode="json"),
            submitted_metadata=event.metadata.model_dump(mode="json"),
        )


async def test_the_sweeper_recovers_stale_runs_at_most_concurrency_at_a_time(
    harness, make_submitted
) -> None:
    h = harness(ScriptedProvider(), recovery_grace_seconds=30, recovery_concurrency=1)
    events = [make_submitted(f"Task {n}\n/steps 1") for n in range(2)]
    for event in events:
        await _died_holding(h, event)
    sweeper = h.service.recovery

    h.clock.now += 60 + 10  # the leases expired 10 s ago: within the grace
    assert await sweeper.sweep() == 0

    h.clock.now += 30  # now over the grace
    assert await sweeper.sweep() == 1
    assert await sweeper.sweep() == 0  # the one slot is busy
    await eventually(_finished(h), until=lambda n: n == 1)
    assert await sweeper.sweep() == 1
    await eventually(_finished(h), until=lambda n: n == 2)
    assert await sweeper.sweep() == 0  # nothing stale is left

    assert Counter(e.name for e in h.runs.terminal()) == {"task.succeeded": 2}
    assert {e.data.attempt for e in h.runs.terminal()} == {2}


async def test_a_stale_run_claimed_meanwhile_by_a_redelivery_is_left_to_it(
    harness, make_submitted
) -> None:
    h = harness(ScriptedProvider())
    event = make_submitted("Task\n/steps 1")
    await _died_holding(h, event)
    h.clock.now += 200
    stale = await h.runs.stale(grace_seconds=30, limit=10)
    async with h.runs.transaction() as tx:  # the redelivery reaches another worker first
        await tx.claim(
            event.metadata.task_id,
            "acme",
            worker_id="worker-2",
            lease_seconds=60,
            wall_seconds=600,
            submitted=event.data.model_dump(mode="json"),
        )

    await h.service.recovery.recover(stale[0])  # the sweeper's late claim finds it held: no run

    assert h.runs.rows[event.metadata.task_id]["lease_owner"] == "worker-2"
    assert [e.name for e in h.runs.events] == []


def _finished(h: Any) -> Any:
    async def count() -> int:
        return sum(row["status"] == "succeeded" for row in h.runs.rows.values())

    return count
