"""The AWS endpoint (moto server) stopped for 30 s during intake, then back with its topology
re-created: every task accepted during the outage is delivered and runs once it is back."""

from __future__ import annotations

import asyncio
import signal
import statistics
import time

import pytest

from relay_devkit.api_client import PublicApi
from relay_ops.stack.process import RunningStack

from .invariants import check_tasks, dead_letters, diagnose
from .workload import all_terminal, record, submit

OUTAGE_SECONDS = 30
TASKS = 40
PROMPT = "Outage task {n}.\n/steps 2\n/sleep 0.2\n/artifact out.md"


@pytest.mark.timeout(600)
async def test_intake_during_an_aws_outage_loses_nothing(
    fault_stack: RunningStack, api: PublicApi
) -> None:
    # a quiet start: what was in moto's queues before the outage is not this test's subject
    warmup = [await submit(api, PROMPT.format(n=f"warm-{n}")) for n in range(5)]
    await all_terminal(api, warmup, within=120, explain=lambda ids: diagnose(fault_stack, ids))

    moto = fault_stack.pid("moto")
    fault_stack.kill("moto", signal.SIGSTOP)  # frozen: connections hang, nothing answers
    stopped_at = time.monotonic()
    try:
        intake_seconds = []
        task_ids = []
        for n in range(TASKS):
            t0 = time.monotonic()
            task_ids.append(await submit(api, PROMPT.format(n=n)))
            intake_seconds.append(time.monotonic() - t0)
            await asyncio.sleep((OUTAGE_SECONDS - 5) / TASKS)
        await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped_at)))
    finally:
        # back as a fresh process: moto has lost everything; the supervisor restarts it and
        # builds the topology again, like an endpoint that comes back empty
        fault_stack.kill("moto", signal.SIGKILL)
    await asyncio.to_thread(fault_stack.wait_restarted, "moto", moto)
    back_at = time.monotonic()
    finished = await all_terminal(
        api, task_ids, within=300, explain=lambda ids: diagnose(fault_stack, ids)
    )

    findings = await check_tasks(api, task_ids, artifacts_per_task=1)
    dlq = dead_letters(fault_stack)
    record(
        "aws_outage",
        {
            "outage_seconds": round(back_at - stopped_at, 1),
            "tasks_accepted_during_outage": len(task_ids),
            "intake_seconds_p50": round(statistics.median(intake_seconds), 3),
            "intake_seconds_max": round(max(intake_seconds), 3),
            "seconds_from_back_to_all_terminal": round(finished - back_at, 1),
            "statuses": findings.statuses,
        },
    )
    assert max(intake_seconds) < 5, "intake must not wait for AWS: the outbox holds the events"
    assert findings.problems == []
    assert findings.statuses == {"succeeded": TASKS}
    assert all(depth == 0 for depth in dlq.values()), dlq
