"""Human input under SIGKILL (issue 18): the agent killed while it saves a task at its question,
and while it resumes one from the answer. Each time the task completes once, with the answer,
and its timeline holds one terminal event with every attempt's steps in order.

To kill the agent inside the save (or the resume) and nowhere else, the test holds the run's row
lock: the agent's statement waits on it, the test sees it waiting (pg_stat_activity), kills the
process, then lets go. The killed transaction never commits; SQS brings the message back."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from relay_devkit.api_client import PublicApi
from relay_devkit.testing import eventually
from relay_ops.stack.process import RunningStack

from .invariants import timeline_problems

PROMPT = "Fault: human input.\n/ask Which region?\n/steps 2\n/sleep 1"


@contextmanager
def run_row_locked(stack: RunningStack, task_id: str) -> Iterator[psycopg.Connection[Any]]:
    """The agent's ``runs`` row of the task, locked by the test until the block ends."""
    with psycopg.connect(stack.environment["DATABASE_URL"], autocommit=False) as conn:
        conn.execute("SELECT 1 FROM agent.runs WHERE task_id = %s FOR UPDATE", (task_id,))
        try:
            yield conn
        finally:
            conn.rollback()


def agent_waits_on(stack: RunningStack, statement: str, *, within: float = 30) -> None:
    """Until a session waits for a lock while running ``statement`` (a prefix of its SQL)."""
    deadline = time.monotonic() + within
    with psycopg.connect(stack.environment["DATABASE_URL"], autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND position(%s IN regexp_replace(query, '\\s+', ' ', 'g')) > 0",
                (statement,),
            ).fetchone()
            if row and row[0]:
                return
            time.sleep(0.05)
    raise AssertionError(f"no statement waited on the lock: {statement!r}")


async def _status(api: PublicApi, task_id: str) -> dict[str, Any]:
    return await api.task(task_id)


async def _finished_once(api: PublicApi, task_id: str) -> tuple[dict[str, Any], list[Any]]:
    done = await api.finished_task(task_id, within=90)
    events = await api.timeline(task_id, within=60)
    assert timeline_problems(task_id, events) == []
    return done, events


@pytest.mark.timeout(300)
async def test_killed_while_saving_the_question_the_task_asks_again_and_completes_once(
    fault_stack: RunningStack, api: PublicApi
) -> None:
    task_id = (await api.submit(PROMPT))["id"]
    await eventually(lambda: _status(api, task_id), until=lambda t: t["status"] == "running")

    with run_row_locked(fault_stack, task_id):
        await asyncio.to_thread(agent_waits_on, fault_stack, "UPDATE runs SET status = $1, steps")
        old = fault_stack.kill("agent", signal.SIGKILL)
    await asyncio.to_thread(fault_stack.wait_restarted, "agent", old)

    waiting = await eventually(
        lambda: _status(api, task_id),
        until=lambda t: t["status"] == "waiting_for_input",
        within=60,
    )
    answered = await api.http.post(f"/v1/tasks/{task_id}/input", json={"text": "eu-north-1"})
    assert answered.status_code == 202, answered.text

    done, events = await _finished_once(api, task_id)
    assert done["status"] == "succeeded", done
    assert "'eu-north-1'" in done["result"]["summary"]
    asked = [e.data["data"] for e in events if e.event == "task.input_requested"]
    # the killed save never committed: one question on the timeline, from the attempt that lived
    assert [q["question_id"] for q in asked] == [waiting["question"]["id"]]
    assert asked[0]["attempt"] >= 2


@pytest.mark.timeout(300)
async def test_killed_while_resuming_the_task_resumes_again_and_completes_once(
    fault_stack: RunningStack, api: PublicApi
) -> None:
    task_id = (await api.submit(PROMPT))["id"]
    waiting = await eventually(
        lambda: _status(api, task_id),
        until=lambda t: t["status"] == "waiting_for_input",
        within=60,
    )

    with run_row_locked(fault_stack, task_id):
        answered = await api.http.post(f"/v1/tasks/{task_id}/input", json={"text": "ap-south-1"})
        assert answered.status_code == 202, answered.text
        await asyncio.to_thread(
            agent_waits_on, fault_stack, "UPDATE runs SET status = 'running', attempt"
        )
        old = fault_stack.kill("agent", signal.SIGKILL)
    await asyncio.to_thread(fault_stack.wait_restarted, "agent", old)

    done, events = await _finished_once(api, task_id)
    assert done["status"] == "succeeded", done
    assert "'ap-south-1'" in done["result"]["summary"]
    names = [e.event for e in events]
    assert names.count("task.input_requested") == names.count("task.input_provided") == 1
    resumed = [
        e.data["data"] for e in events if e.event == "task.started" and e.data["data"]["resumed"]
    ]
    assert [r["resumed"]["question_id"] for r in resumed] == [waiting["question"]["id"]]


@pytest.mark.timeout(300)
async def test_killed_in_the_middle_of_a_resumed_attempt_it_resumes_from_the_question(
    fault_stack: RunningStack, api: PublicApi
) -> None:
    task_id = (await api.submit(PROMPT.replace("/sleep 1", "/sleep 2")))["id"]
    await eventually(
        lambda: _status(api, task_id),
        until=lambda t: t["status"] == "waiting_for_input",
        within=60,
    )
    answered = await api.http.post(f"/v1/tasks/{task_id}/input", json={"text": "sa-east-1"})
    assert answered.status_code == 202, answered.text
    # the resumed attempt is at work (its first step after the answer is in), then it dies
    await eventually(
        lambda: _status(api, task_id),
        until=lambda t: t["usage"]["input_tokens"] >= 100 + 110,
        within=60,
    )
    old = fault_stack.kill("agent", signal.SIGKILL)
    await asyncio.to_thread(fault_stack.wait_restarted, "agent", old)

    done, events = await _finished_once(api, task_id)
    assert done["status"] == "succeeded", done
    assert "'sa-east-1'" in done["result"]["summary"]
    resumed = [
        e.data["data"] for e in events if e.event == "task.started" and e.data["data"]["resumed"]
    ]
    assert len(resumed) >= 1
    assert all(r["resumed"]["step"] == 1 for r in resumed)
