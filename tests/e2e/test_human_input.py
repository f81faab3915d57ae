"""Human input through the public API, on the scripted model (``/ask QUESTION``): a task asks,
waits without holding a worker, and resumes from where it stopped once answered (issue 18)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from relay_devkit.api_client import PublicApi, TimelineEvent
from relay_devkit.testing import eventually
from relay_ops.stack.process import RunningStack

pytestmark = pytest.mark.e2e

AGENT_SLOTS = 4  # the agent's default RELAY_CONSUMER_CONCURRENCY
PROBLEM = "application/problem+json"


async def _waiting(api: PublicApi, task_id: str, *, within: float = 30) -> dict[str, Any]:
    async def probe() -> dict[str, Any]:
        return await api.task(task_id)

    task: dict[str, Any] = await eventually(
        probe, until=lambda t: t["status"] == "waiting_for_input", within=within
    )
    return task


async def _answer(api: PublicApi, task_id: str, body: Any) -> Any:
    return await api.http.post(f"/v1/tasks/{task_id}/input", json=body)


def _labels(events: list[TimelineEvent]) -> list[str]:
    labels = []
    for event in events:
        data = event.data["data"]
        if event.event == "task.started":
            resumed = " resumed" if data.get("resumed") else ""
            labels.append(f"started({data['attempt']}){resumed}")
        elif event.event == "task.progressed":
            labels.append(f"progressed({data['attempt']},{data['step']})")
        else:
            labels.append(event.event.removeprefix("task."))
    return labels


def _attempts_running(telemetry_dir: Path) -> int | None:
    """The agent's last exported relay.agent.attempts.running (its metrics file), if any."""
    path = telemetry_dir / "agent.metrics.jsonl"
    if not path.exists():
        return None
    value = None
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        for resource in json.loads(line)["resource_metrics"]:
            for scope in resource["scope_metrics"]:
                for metric in scope["metrics"]:
                    if metric["name"] == "relay.agent.attempts.running":
                        value = sum(p["value"] for p in metric["data"]["data_points"])
    return value


async def test_a_task_asks_waits_without_a_worker_and_resumes_with_the_answer(
    api: PublicApi, stack: RunningStack
) -> None:
    task = await api.submit("Plan the rollout.\n/ask Which region?\n/steps 2")

    waiting = await _waiting(api, task["id"])
    assert waiting["question"]["text"] == "Which region?"
    # no worker holds it: the agent's own metric says so once it has exported after the wait
    asked_at = time.monotonic()
    await eventually(
        lambda: asyncio.to_thread(_attempts_running, stack.config.telemetry_dir),
        until=lambda running: running == 0 and time.monotonic() - asked_at > 3,
        within=30,
    )

    answered = await _answer(
        api, task["id"], {"text": "eu-west-1", "question_id": waiting["question"]["id"]}
    )
    assert answered.status_code == 202, answered.text
    assert (answered.json()["status"], answered.json()["question"]) == ("running", None)

    done = await api.finished_task(task["id"], within=60)
    assert done["status"] == "succeeded", done
    assert "'eu-west-1'" in done["result"]["summary"]
    events = await api.timeline(task["id"])
    assert _labels(events) == [
        "submitted",
        "started(1)",
        "progressed(1,1)",
        "input_requested",
        "input_provided",
        "started(2) resumed",
        "progressed(2,2)",
        "progressed(2,3)",
        "artifact.published",
        "succeeded",
    ]
    by_type = {e.event: e.data["data"] for e in events}
    question_id = waiting["question"]["id"]
    assert by_type["task.input_requested"]["question_id"] == question_id
    assert by_type["task.input_provided"] == {"question_id": question_id, "text": "eu-west-1"}
    assert by_type["task.started"]["resumed"] == {"question_id": question_id, "step": 1}
    # budgets count across the pause: every call's usage is in the total
    assert done["usage"]["input_tokens"] == sum(100 + 10 * turn for turn in range(4))


async def test_waiting_tasks_leave_every_worker_slot_free(api: PublicApi) -> None:
    asking = [await api.submit(f"ask {n}\n/ask Go on?\n/steps 1") for n in range(AGENT_SLOTS)]
    for task in asking:
        await _waiting(api, task["id"])

    plain = await api.submit("/steps 1")
    assert (await api.finished_task(plain["id"], within=30))["status"] == "succeeded"

    for task in asking:
        assert (await _answer(api, task["id"], {"text": "yes"})).status_code == 202
    for task in asking:
        assert (await api.finished_task(task["id"], within=60))["status"] == "succeeded"


async def test_an_answer_before_the_question_is_a_409_and_changes_nothing(api: PublicApi) -> None:
    task = await api.submit("/sleep 3\n/ask Which region?")

    early = await _answer(api, task["id"], {"text": "too early"})

    assert early.status_code == 409, early.text
    assert early.headers["content-type"].startswith(PROBLEM)
    waiting = await _waiting(api, task["id"])
    assert waiting["question"]["text"] == "Which region?"
    await api.http.post(f"/v1/tasks/{task['id']}/cancel")


async def _question_on_the_stream(api: PublicApi, task_id: str) -> str:
    """The question id of the task's first task.input_requested, as a follower sees it."""
    async with aconnect_sse(
        api.http, "GET", f"/v1/tasks/{task_id}/events", timeout=httpx.Timeout(30)
    ) as source:
        async for sse in source.aiter_sse():
            if sse.event == "task.input_requested":
                question_id: str = json.loads(sse.data)["data"]["question_id"]
                return question_id
    raise AssertionError(f"task {task_id}'s stream ended without a question")


async def test_an_answer_sent_the_moment_the_question_shows_on_the_stream_is_taken(
    api: PublicApi,
) -> None:
    """The stream can show the question before the task record has it (separate queues): an
    answer naming it waits for the record instead of being refused as answered already."""
    tasks = [await api.submit(f"ask {n}\n/ask Which zone?\n/steps 1") for n in range(10)]
    for task in tasks:
        question_id = await _question_on_the_stream(api, task["id"])
        answered = await _answer(api, task["id"], {"text": "zone b", "question_id": question_id})
        assert answered.status_code == 202, answered.text
        assert answered.json()["status"] == "running"
    for task in tasks:
        done = await api.finished_task(task["id"], within=60)
        assert (done["status"], "zone b" in done["result"]["summary"]) == ("succeeded", True)


async def test_bad_answers_are_problems_and_change_nothing(
    api: PublicApi, other_api: PublicApi
) -> None:
    task = await api.submit("/ask Which region?")
    waiting = await _waiting(api, task["id"])

    cases = [
        (api, {"text": ""}, 422),
        (api, {"text": "  "}, 422),
        (api, {"answer": "eu"}, 422),
        (api, {"text": "x" * 16001}, 413),
        (api, {"text": "eu", "question_id": task["id"]}, 409),  # not the pending question
        (other_api, {"text": "mine"}, 404),
    ]
    for client, body, status in cases:
        response = await _answer(client, task["id"], body)
        assert response.status_code == status, (body, response.text)
        assert response.headers["content-type"].startswith(PROBLEM)
        assert await api.task(task["id"]) == waiting, body

    assert (await _answer(api, task["id"], {"text": "eu"})).status_code == 202
    second = await _answer(api, task["id"], {"text": "us"})
    assert second.status_code == 409
    done = await api.finished_task(task["id"], within=60)
    assert "'eu'" in done["result"]["summary"]
    provided = [e for e in await api.timeline(task["id"]) if e.event == "task.input_provided"]
    assert [e.data["data"]["text"] for e in provided] == ["eu"]


async def test_a_waiting_task_can_be_cancelled(api: PublicApi) -> None:
    task = await api.submit("/ask Which region?")
    await _waiting(api, task["id"])

    response = await api.http.post(f"/v1/tasks/{task['id']}/cancel", json={"reason": "no"})

    assert (response.status_code, response.json()["status"]) == (202, "cancelling")
    done = await api.finished_task(task["id"], within=30)
    assert done["status"] == "cancelled"
    labels = _labels(await api.timeline(task["id"]))
    assert labels[-3:] == ["input_requested", "cancel_requested", "cancelled"]
    assert (await _answer(api, task["id"], {"text": "late"})).status_code == 409


async def test_an_unanswered_task_fails_with_input_timeout(api: PublicApi) -> None:
    task = await api.submit("/ask Anyone there?", limits={"max_wait_seconds": 1})
    await _waiting(api, task["id"])

    done = await api.finished_task(task["id"], within=45)

    assert done["status"] == "failed"
    assert done["error"]["code"] == "input_timeout"
    assert done["limits"]["max_wait_seconds"] == 1
    labels = _labels(await api.timeline(task["id"]))
    assert labels[-2:] == ["input_requested", "failed"]
