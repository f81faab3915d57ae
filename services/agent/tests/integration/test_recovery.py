"""Recovery of runs whose worker died and whose task.submitted is gone, against real PostgreSQL:
the sweeper runs them as the next attempt exactly once, never while a live lease holds them,
and fails a run that has used up its attempts."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import pytest

from agent.recovery import RecoverySweeper
from agent.repository import PostgresRuns
from relay_devkit.testing import eventually
from relay_shared.events import TaskLimits, TaskSubmitted, TaskSubmittedData

from .conftest import loop_of

pytestmark = pytest.mark.integration

# quick sweeps, a short grace: what takes minutes in production takes a second here
RECOVERY = {"recovery_interval_seconds": 0.2, "recovery_grace_seconds": 1.0}
TERMINAL = {"task.succeeded", "task.failed", "task.cancelled"}


def _submitted(prompt: str = "Recover me\n/steps 2") -> TaskSubmitted:
    limits = TaskLimits(max_turns=10, max_output_tokens=10_000, max_wall_seconds=60)
    return TaskSubmitted.create(
        TaskSubmittedData(prompt=prompt, model="scripted", limits=limits),
        tenant_id="acme",
        task_id=uuid.uuid4(),
    )


async def _claimed_by_a_worker_that_died(
    runtime: Any, event: TaskSubmitted, *, expired: str | None = "5 seconds", attempt: int = 1
) -> None:
    """A run claimed (attempt ``attempt``) by a worker that is gone, its message lost too;
    ``expired=None``: its lease is still live."""
    async with PostgresRuns(runtime.database).transaction() as tx:
        await tx.claim(
            event.metadata.task_id,
            "acme",
            worker_id="dead-worker",
            lease_seconds=3600,
            wall_seconds=60,
            submitted=event.data.model_dump(mode="json"),
            submitted_metadata=event.metadata.model_dump(mode="json"),
        )
    if expired is not None:
        await runtime.execute(
            "UPDATE runs SET attempt = %s, lease_expires_at = now() - %s::interval"
            " WHERE task_id = %s",
            attempt,
            expired,
            event.metadata.task_id,
        )


async def _events_of(runtime: Any, task_id: uuid.UUID) -> list[dict[str, Any]]:
    return [
        row
        for row in await runtime.outbox()
        if row["detail"]["metadata"]["task_id"] == str(task_id)
    ]


async def _finished(runtime: Any, event: TaskSubmitted) -> Any:
    return await eventually(
        lambda: runtime.run_row(event.metadata.task_id),
        until=lambda run: run["status"] != "running",
        within=30,
    )


async def test_a_stale_run_without_a_message_is_finished_by_the_sweeper_exactly_once(
    runtime, serving, counting, queue_depth
) -> None:
    event = _submitted()
    await _claimed_by_a_worker_that_died(runtime, event)
    assert await queue_depth() == (0, 0)  # nothing will redeliver it
    first, second = counting(), counting()
    # two agent processes sweep the same table: only one of them may run it
    async with (
        serving(first, worker_id="agent-a", **RECOVERY) as a,
        serving(second, worker_id="agent-b", **RECOVERY) as b,
    ):
        run = await _finished(runtime, event)
        sweeps = await _sweeps(a, b)()
        await eventually(
            _sweeps(a, b), until=lambda n: n >= sweeps + 6, within=10
        )  # more sweeps after it finished: none of them runs it again

    assert (run["status"], run["attempt"]) == ("succeeded", 2)
    assert first.calls + second.calls == 3  # one run of /steps 2
    rows = await _events_of(runtime, event.metadata.task_id)
    assert Counter(r["detail_type"] for r in rows) == {
        "task.started": 1,
        "task.progressed": 2,
        "artifact.uploaded": 1,
        "task.succeeded": 1,
    }
    started = rows[0]["detail"]
    assert started["data"]["attempt"] == 2
    # the recovered attempt carries the original task.submitted's flow forward
    assert started["metadata"]["causation_id"] == str(event.metadata.event_id)
    assert started["metadata"]["correlation_id"] == event.metadata.correlation_id


async def test_a_run_under_a_live_lease_is_never_taken(runtime, serving, counting) -> None:
    event = _submitted()
    await _claimed_by_a_worker_that_died(runtime, event, expired=None)  # its holder is alive
    provider = counting()
    async with serving(provider, **RECOVERY) as app:
        await eventually(_sweeps(app), until=lambda n: n >= 10, within=10)

    run = await runtime.run_row(event.metadata.task_id)
    assert (run["status"], run["attempt"], run["lease_owner"]) == ("running", 1, "dead-worker")
    assert provider.calls == 0
    assert await _events_of(runtime, event.metadata.task_id) == []


async def test_a_lease_expired_within_the_grace_is_left_for_the_redelivery(
    runtime, serving, counting
) -> None:
    event = _submitted()
    await _claimed_by_a_worker_that_died(runtime, event, expired="1 second")
    provider = counting()
    async with serving(provider, recovery_interval_seconds=0.2, recovery_grace_seconds=3600) as app:
        await eventually(_sweeps(app), until=lambda n: n >= 10, within=10)
    assert provider.calls == 0
    assert (await runtime.run_row(event.metadata.task_id))["status"] == "running"


async def test_a_run_that_used_up_its_attempts_fails_once_instead(
    runtime, serving, counting
) -> None:
    event = _submitted()
    await _claimed_by_a_worker_that_died(runtime, event, attempt=3)
    provider = counting()
    async with serving(provider, recovery_max_attempts=3, **RECOVERY) as app:
        run = await _finished(runtime, event)
        sweeps = await _sweeps(app)()
        await eventually(_sweeps(app), until=lambda n: n >= sweeps + 5, within=10)

    assert (run["status"], run["attempt"]) == ("failed", 3)
    assert provider.calls == 0
    rows = await _events_of(runtime, event.metadata.task_id)
    assert [r["detail_type"] for r in rows] == ["task.failed"]
    data = rows[0]["detail"]["data"]
    assert (data["code"], data["attempt"]) == ("attempts_exhausted", 3)


def _sweeps(*apps: Any) -> Any:
    async def count() -> int:
        return sum(loop_of(app, RecoverySweeper).rounds for app in apps)

    return count
