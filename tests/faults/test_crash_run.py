"""At least 200 multi-step tasks while agent workers are SIGKILLed again and again, and the
notifier, artifacts and tasks services once each: every task ends, every timeline holds exactly
one terminal event and no gaps, no artifact is recorded twice, the DLQs stay empty."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest

from relay.api_client import PublicApi
from relay.stack.process import RunningStack

from .invariants import check_tasks, dead_letters

TASKS = 200
PROMPT = "Crash-run task {n}.\n/steps 3\n/sleep 0.3\n/artifact out.md"
RESULTS = Path(__file__).parent / "results"


async def _submit(api: PublicApi, n: int) -> str:
    """Submit like a careful client: an Idempotency-Key, and retries while the API is down."""
    key = f"crash-run-{n}-{uuid.uuid4().hex[:6]}"
    for attempt in range(120):
        try:
            response = await api.http.post(
                "/v1/tasks",
                json={"prompt": PROMPT.format(n=n)},
                headers={"Idempotency-Key": key},
            )
        except httpx.TransportError:
            response = None
        if response is not None and response.status_code == 202:
            return str(response.json()["id"])
        assert response is None or response.status_code in {409, 502, 503}, response.text
        await asyncio.sleep(min(2.0, 0.1 * 2**attempt))
    raise AssertionError(f"task {n} could not be submitted")


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
        submitting = asyncio.Semaphore(10)

        async def submit(n: int) -> str:
            async with submitting:
                return await _submit(api, n)

        task_ids = await asyncio.gather(*(submit(n) for n in range(TASKS)))
        finished = await asyncio.wait_for(_all_terminal(api, task_ids), timeout=600)
    finally:
        stop.set()
        await killer
    elapsed = time.monotonic() - started

    findings = await check_tasks(api, list(task_ids), artifacts_per_task=1)
    dlq = dead_letters(fault_stack)
    _record(
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


async def _all_terminal(api: PublicApi, task_ids: list[str]) -> float:
    """Poll until every task is terminal, riding out the moments a killed service is away."""
    pending = set(task_ids)
    while pending:
        for task_id in list(pending)[:50]:
            try:
                response = await api.http.get(f"/v1/tasks/{task_id}")
            except httpx.TransportError:
                break
            if response.status_code in {502, 503}:
                break
            assert response.status_code == 200, response.text
            if response.json()["status"] in {"succeeded", "failed", "cancelled"}:
                pending.discard(task_id)
        if pending:
            await asyncio.sleep(0.5)
    return time.monotonic()


def _record(name: str, figures: dict[str, object]) -> None:
    """Figures for docs/reliability.md, kept beside the tests (not checked in)."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
