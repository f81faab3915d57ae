"""At least 200 multi-step tasks while agent workers are SIGKILLed again and again, and the
notifier, artifacts and tasks services once each: every task ends, every timeline holds exactly
one terminal event and no gaps, no artifact is recorded twice, the DLQs stay empty."""

from __future__ import annotations

import asyncio
import random
import signal
import time

import pytest

from relay_devkit.api_client import PublicApi
from relay_ops.stack.process import RunningStack

from .invariants import check_tasks, dead_letters, diagnose
from .workload import all_terminal, record, submit_many

TASKS = 200
PROMPT = "Crash-run task {n}.\n/steps 3\n/sleep 0.3\n/artifact out.md"


async def _killer(stack: RunningStack, stop: asyncio.Event, kills: dict[str, int]) -> None:
    """SIGKILL an agent worker every few seconds; the others once each, spread over the run."""
    once = ["notifier", "artifacts", "tasks"]
    rng = random.Random(7)
    round_ = 0
    while not stop.is_set():
        await asyncio.sleep(rng.uniform(5.0, 8.0))
        if stop.is_set():
            break
        victims = ["agent"] + ([once.pop(0)] if once and round_ % 2 == 1 else [])
        for victim in victims:
            old = stack.kill(victim, signal.SIGKILL)
            kills[victim] = kills.get(victim, 0) + 1
            await asyncio.to_thread(stack.wait_restarted, victim, old)
        round_ += 1


@pytest.mark.timeout(900)
async def test_crash_run_loses_nothing_and_does_nothing_twice(
    fault_stack: RunningStack, api: PublicApi
) -> None:
    started = time.monotonic()
    stop = asyncio.Event()
    kills: dict[str, int] = {}
    killer = asyncio.create_task(_killer(fault_stack, stop, kills))
    try:
        task_ids = await submit_many(api, [PROMPT.format(n=n) for n in range(TASKS)])
        finished = await all_terminal(
            api, task_ids, within=600, explain=lambda ids: diagnose(fault_stack, ids)
        )
    finally:
        stop.set()
        await killer
    elapsed = time.monotonic() - started

    findings = await check_tasks(api, list(task_ids), artifacts_per_task=1)
    dlq = dead_letters(fault_stack)
    record(
        "crash_run",
        {
            "tasks": TASKS,
            "kills": kills,
            "seconds_to_all_terminal": round(finished - started, 1),
            "seconds_total": round(elapsed, 1),
            "statuses": findings.statuses,
            "tasks_by_attempts": findings.attempts,
            "dead_letters": dlq,
        },
    )
    assert len(set(task_ids)) == TASKS  # one task per Idempotency-Key, whatever the retries
    assert findings.problems == []
    assert findings.statuses == {"succeeded": TASKS}
    assert kills["agent"] >= 5
    assert all(kills.get(s) == 1 for s in ("notifier", "artifacts", "tasks"))
    assert sum(n for attempts, n in findings.attempts.items() if attempts > 1) > 0, (
        "no task was re-run: the kills never hit a running task, so the run proved nothing"
    )
    assert all(depth == 0 for depth in dlq.values()), dlq
