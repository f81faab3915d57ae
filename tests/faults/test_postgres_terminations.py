"""PostgreSQL backends terminated mid-run (pg_terminate_backend), round after round while the
tasks run: every service's pooled connections, LISTEN connections and in-flight transactions
are cut, and nothing is lost or done twice."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

from relay_devkit.api_client import PublicApi
from relay_ops.stack.process import RunningStack

from .invariants import check_tasks, dead_letters, diagnose
from .workload import all_terminal, record, submit_many

TASKS = 60
ROUNDS = 10  # one every 2 s: the whole run is under fire, then the services must recover
PROMPT = "Termination task {n}.\n/steps 3\n/sleep 0.3\n/artifact out.md"


def _terminate_all(database_url: str) -> int:
    """Terminate every other session on the stack's database; returns how many."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return sum(1 for (ok,) in rows if ok)


@pytest.mark.timeout(600)
async def test_terminated_backends_lose_nothing(fault_stack: RunningStack, api: PublicApi) -> None:
    database_url = fault_stack.environment["DATABASE_URL"]
    started = time.monotonic()
    terminated: list[int] = []
    stop = asyncio.Event()

    async def terminator() -> None:
        for _ in range(ROUNDS):
            await asyncio.sleep(2.0)
            if stop.is_set():
                return
            terminated.append(await asyncio.to_thread(_terminate_all, database_url))

    killer = asyncio.create_task(terminator())
    try:
        task_ids = await submit_many(api, [PROMPT.format(n=n) for n in range(TASKS)])
        finished = await all_terminal(
            api, task_ids, within=400, explain=lambda ids: diagnose(fault_stack, ids)
        )
    finally:
        stop.set()
        await killer

    findings = await check_tasks(api, task_ids, artifacts_per_task=1)
    dlq = dead_letters(fault_stack)
    record(
        "postgres_terminations",
        {
            "tasks": TASKS,
            "termination_rounds": len(terminated),
            "sessions_terminated": sum(terminated),
            "seconds_to_all_terminal": round(finished - started, 1),
            "seconds_after_last_round": round(finished - started - 2.0 * len(terminated), 1),
            "statuses": findings.statuses,
            "tasks_by_attempts": findings.attempts,
        },
    )
    assert len(terminated) == ROUNDS  # the run outlasted the attack: it was all mid-run
    assert sum(terminated) > 0
    assert findings.problems == []
    assert findings.statuses == {"succeeded": TASKS}
    assert all(depth == 0 for depth in dlq.values()), dlq
