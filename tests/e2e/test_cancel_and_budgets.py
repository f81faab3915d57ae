"""Cancellation and budgets through the public API, on the scripted model."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from relay_devkit.api_client import PublicApi, TimelineEvent
from relay_devkit.testing import eventually

pytestmark = pytest.mark.e2e

TERMINAL = {"task.succeeded", "task.failed", "task.cancelled"}
AGENT_SLOTS = 4  # the agent's default RELAY_CONSUMER_CONCURRENCY


async def _status(api: PublicApi, task_id: str) -> str:
    return str((await api.task(task_id))["status"])


async def _cancel(api: PublicApi, task_id: str) -> dict[str, Any]:
    response = await api.http.post(f"/v1/tasks/{task_id}/cancel", json={"reason": "test"})
    assert response.status_code == 202, response.text
    task: dict[str, Any] = response.json()
    return task


def _one_terminal(events: list[TimelineEvent]) -> str:
    terminals = [e.event for e in events if e.event in TERMINAL]
    assert len(terminals) == 1, terminals
    assert events[-1].event == terminals[0]
    return terminals[0]


async def test_cancel_while_the_model_thinks_stops_it(api: PublicApi) -> None:
    task = await api.submit("/steps 3\n/sleep 20")
    await eventually(lambda: _status(api, task["id"]), until=lambda s: s == "running", within=30)
    assert (await _cancel(api, task["id"]))["status"] == "cancelling"
    assert (await _cancel(api, task["id"]))["status"] == "cancelling"  # repeatable

    events = await asyncio.wait_for(api.timeline(task["id"]), timeout=10)  # not the 60 s of work
    assert _one_terminal(events) == "task.cancelled"
    assert [e.event for e in events].count("task.cancel_requested") == 1
    final = await api.finished_task(task["id"])
    assert final["status"] == "cancelled"
    late = await api.http.post(f"/v1/tasks/{task['id']}/cancel")
    assert late.status_code == 409
    assert late.headers["content-type"].startswith("application/problem+json")


async def test_a_task_cancelled_while_queued_never_starts(api: PublicApi) -> None:
    # fill every agent slot with slow work, so the next task waits in the queue
    blockers = [await api.submit(f"blocker {n}\n/steps 1\n/sleep 30") for n in range(AGENT_SLOTS)]
    for blocker in blockers:
        await eventually(
            lambda b=blocker: _status(api, b["id"]), until=lambda s: s == "running", within=30
        )
    queued = await api.submit("/steps 1")
    assert (await _cancel(api, queued["id"]))["status"] == "cancelling"

    # the cancel takes the agent's control queue, so it is handled while every slot is busy
    events = await asyncio.wait_for(api.timeline(queued["id"]), timeout=15)
    assert [e.event for e in events] == [
        "task.submitted",
        "task.cancel_requested",
        "task.cancelled",
    ]
    assert events[-1].data["data"]["attempt"] == 0

    for blocker in blockers:  # free the slots; the queued task's delivery now comes through
        await _cancel(api, blocker["id"])
    for blocker in blockers:
        assert _one_terminal(await api.timeline(blocker["id"])) == "task.cancelled"
    marker = await api.submit("/steps 1")  # handled after the queued task's task.submitted
    await api.timeline(marker["id"])
    final = await api.finished_task(queued["id"])
    assert final["status"] == "cancelled"
    assert final["started_at"] is None
    assert [e.event for e in await api.timeline(queued["id"])] == [e.event for e in events]


@pytest.mark.parametrize(
    ("limits", "prompt", "budget"),
    [
        ({"max_turns": 2}, "/steps 5", "max_turns"),
        ({"max_wall_seconds": 1}, "/steps 3\n/sleep 2", "max_wall_seconds"),
        ({"max_output_tokens": 30}, "/steps 3", "max_output_tokens"),
    ],
)
async def test_a_budget_ends_the_task_failed_and_names_the_budget(
    api: PublicApi, limits: dict[str, Any], prompt: str, budget: str
) -> None:
    task = await api.submit(prompt, limits=limits)
    assert {k: task["limits"][k] for k in limits} == limits
    events = await api.timeline(task["id"])
    assert _one_terminal(events) == "task.failed"
    failed = events[-1].data["data"]
    assert (failed["code"], failed["budget"]) == ("budget_exceeded", budget)
    final = await api.finished_task(task["id"])
    assert final["status"] == "failed"
    assert final["error"]["code"] == "budget_exceeded"
    assert final["error"]["budget"] == budget


async def test_limits_above_the_maximum_are_refused(api: PublicApi) -> None:
    response = await api.http.post(
        "/v1/tasks", json={"prompt": "x", "limits": {"max_turns": 100_000}}
    )
    assert response.status_code == 422
    assert "max_turns" in response.text
