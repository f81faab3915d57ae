"""Shutdown: running tasks finish within the grace period; past it they are interrupted without
a terminal event, their lease released and their message handed back, so the next worker runs
them at once as the next attempt. The SIGTERM test runs the real ``python -m agent``."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from relay_devkit.testing import eventually
from relay_ops.stack.moto import free_port
from relay_shared.events import TaskSubmitted, TaskSubmittedData

pytestmark = pytest.mark.integration

TERMINAL = {"task.succeeded", "task.failed", "task.cancelled"}


def _submitted(prompt: str) -> TaskSubmitted:
    return TaskSubmitted.create(
        TaskSubmittedData(prompt=prompt, model="scripted"), tenant_id="acme", task_id=uuid.uuid4()
    )


async def test_running_tasks_finish_within_the_grace_period(runtime, serving, publish) -> None:
    event = _submitted("Finish me\n/steps 3\n/sleep 0.3")
    async with serving(worker_id="graceful", shutdown_grace_seconds=20):
        await publish(event)
        await eventually(
            lambda: runtime.run_row(event.metadata.task_id),
            until=lambda run: run is not None and run["steps"] >= 1,
            within=30,
        )
    # the lifespan has ended: the run finished inside it, as attempt 1
    run = await runtime.run_row(event.metadata.task_id)
    assert run is not None
    assert (run["status"], run["attempt"], run["worker_id"]) == ("succeeded", 1, "graceful")


@pytest.fixture
def agent_process(runtime, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, int]]:
    settings = runtime.settings
    port = free_port()
    env = {
        **os.environ,
        "RELAY_ENV": settings.env,
        "RELAY_DATABASE_URL": settings.database_url.get_secret_value(),
        "RELAY_DB_SCHEMA": settings.db_schema,
        "RELAY_AWS_ENDPOINT_URL": settings.aws_endpoint_url or "",
        "RELAY_HTTP_PORT": str(port),
        "RELAY_WORKER_ID": "sigterm-worker",
        "RELAY_LLM_PROVIDER": "scripted",
        "RELAY_SHUTDOWN_GRACE_SECONDS": "1",
        "RELAY_CONSUMER_WAIT_SECONDS": "1",
        "RELAY_OUTBOX_POLL_INTERVAL": "0.5",
        "RELAY_WORKSPACE_ROOT": str(tmp_path / "process-workspaces"),
    }
    log_path = tmp_path / "agent.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "agent"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield process, log_path, port
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


async def test_sigterm_hands_a_running_task_to_the_next_worker(
    runtime, serving, publish, agent_process
) -> None:
    process, log_path, port = agent_process
    event = _submitted("Interrupted\n/steps 8\n/sleep 0.4")

    async def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"agent exited at start-up:\n{log_path.read_text()}")
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
        except httpx.TransportError:
            return False

    await eventually(healthy, within=60, interval=0.2)
    await publish(event)
    await eventually(
        lambda: runtime.run_row(event.metadata.task_id),
        until=lambda run: run is not None and run["steps"] >= 1,
        within=30,
    )

    process.send_signal(signal.SIGTERM)
    # grace (1 s) and the kit's stop allowance, with room for a slow machine
    returncode = await asyncio.to_thread(process.wait, 30)
    log = log_path.read_text()
    # uvicorn re-raises the SIGTERM once its graceful shutdown is done
    assert returncode in (0, -signal.SIGTERM), log
    assert "Application shutdown complete" in log
    assert "interrupted by shutdown" in log

    run = await runtime.run_row(event.metadata.task_id)
    assert run is not None
    assert (run["status"], run["attempt"], run["worker_id"]) == ("running", 1, "sigterm-worker")
    assert await _lease_released(runtime, event)
    assert not TERMINAL & set(await runtime.emitted())  # a shutdown emits nothing

    # The message is visible again at once (not after the queue's 120 s visibility timeout) and
    # the lease is released (no 60 s wait): the next worker runs the task now, as attempt 2.
    async with serving(worker_id="next-worker"):
        run = await eventually(
            lambda: runtime.run_row(event.metadata.task_id),
            until=lambda run: run["status"] == "succeeded",
            within=30,
        )
    assert (run["attempt"], run["worker_id"]) == (2, "next-worker")
    rows = await runtime.outbox()
    started = [r["detail"]["data"] for r in rows if r["detail_type"] == "task.started"]
    assert [(s["attempt"], s["worker_id"]) for s in started] == [
        (1, "sigterm-worker"),
        (2, "next-worker"),
    ]
    assert [r["detail_type"] for r in rows if r["detail_type"] in TERMINAL] == ["task.succeeded"]


async def _lease_released(runtime, event: TaskSubmitted) -> bool:
    async with runtime.database.transaction() as conn:
        cur = await conn.execute(
            "SELECT lease_expires_at <= now() AS released FROM runs WHERE task_id = %s",
            (event.metadata.task_id,),
        )
        row = await cur.fetchone()
    return bool(row and row["released"])
