"""SIGTERM to each service in turn while tasks flow: each stops gracefully (in-flight work
finishes or is handed back), the supervisor starts it again, and nothing is lost."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from relay_devkit.api_client import PublicApi
from relay_ops.stack.config import SERVICES
from relay_ops.stack.process import RunningStack

from .invariants import check_tasks, dead_letters, diagnose
from .workload import all_terminal, record, submit_many

TASKS_PER_ROUND = 15
PROMPT = "SIGTERM task {n}.\n/steps 2\n/sleep 0.5\n/artifact out.md"


@pytest.mark.timeout(900)
async def test_sigterm_to_each_service_under_load_loses_nothing(
    fault_stack: RunningStack, api: PublicApi
) -> None:
    started = time.monotonic()
    task_ids: list[str] = []
    stops: dict[str, float] = {}
    for service in SERVICES:
        batch = asyncio.create_task(
            submit_many(api, [PROMPT.format(n=f"{service}-{n}") for n in range(TASKS_PER_ROUND)])
        )
        await asyncio.sleep(1.0)  # work in flight
        old = fault_stack.kill(service, signal.SIGTERM)
        t0 = time.monotonic()
        await asyncio.to_thread(fault_stack.wait_restarted, service, old)
        stops[service] = round(time.monotonic() - t0, 1)
        task_ids += await batch
    finished = await all_terminal(
        api, task_ids, within=600, explain=lambda ids: diagnose(fault_stack, ids)
    )

    findings = await check_tasks(api, task_ids, artifacts_per_task=1)
    dlq = dead_letters(fault_stack)
    record(
        "sigterm_under_load",
        {
            "tasks": len(task_ids),
            "seconds_from_sigterm_to_serving_again": stops,
            "seconds_to_all_terminal": round(finished - started, 1),
            "statuses": findings.statuses,
            "tasks_by_attempts": findings.attempts,
        },
    )
    assert findings.problems == []
    assert findings.statuses == {"succeeded": len(task_ids)}
    assert all(depth == 0 for depth in dlq.values()), dlq
