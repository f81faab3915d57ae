"""Answering a task's question (human input) with the client and the CLI, against a small local
HTTP server that answers as the API does (tests/e2e has the same against the real stack)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from typer.testing import CliRunner

from relay_client import AsyncRelay, ConflictError, Question, Relay, Task
from relay_client.cli import app
from relay_devkit.testing import serve_app

TASK_ID = "5f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"
QUESTION_ID = "0c9d8e7f-6a5b-4c3d-8e1f-2a3b4c5d6e7f"
ZERO = {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0, "cost_usd": 0.0}  # fmt: skip


def task_json(status: str, question: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": TASK_ID, "status": status, "prompt": "Pick a region\n/ask Which region?",
        "model": "m", "metadata": {}, "created_at": "2026-01-01T00:00:00Z",
        "limits": {"max_turns": 10, "max_output_tokens": 100, "max_wall_seconds": 60.0,
                   "max_cost_usd": None, "max_wait_seconds": 86400.0},
        "updated_at": "2026-01-01T00:00:00Z", "started_at": "2026-01-01T00:00:00Z",
        "finished_at": None, "usage": ZERO, "error": None, "result": None, "question": question,
    }  # fmt: skip


WAITING = task_json(
    "waiting_for_input",
    {"id": QUESTION_ID, "text": "Which region?", "asked_at": "2026-01-01T00:00:01Z"},
)
CONFLICT = {
    "type": "about:blank",
    "title": "Task not waiting for input",
    "status": 409,
    "detail": "The task is running, not waiting_for_input: there is no question to answer.",
}


def sse(seq: int, kind: str, data: dict[str, Any]) -> str:
    event = {"type": kind, "seq": seq, "task_id": TASK_ID, "occurred_at": "2026-01-01T00:00:00Z",
             "event_id": f"{seq:08d}-0000-4000-8000-000000000000", "data": data}  # fmt: skip
    return f"id: {seq}\nevent: {kind}\ndata: {json.dumps(event)}\n\n"


TIMELINE = "".join([
    sse(1, "task.submitted", {"model": "m"}),
    sse(2, "task.started", {"attempt": 1, "worker_id": "w-1"}),
    sse(3, "task.input_requested", {"attempt": 1, "step": 1, "question_id": QUESTION_ID,
                                    "question": "Which region?", "usage": ZERO, "cost_usd": 0}),
    sse(4, "task.input_provided", {"question_id": QUESTION_ID, "text": "eu-west-1"}),
    sse(5, "task.started", {"attempt": 2, "worker_id": "w-2",
                            "resumed": {"question_id": QUESTION_ID, "step": 1}}),
    sse(6, "task.succeeded", {"attempt": 2, "summary": "Region: eu-west-1"}),
])  # fmt: skip


class FakeApi:
    """Answers the first input with the task running again and every later one with a 409."""

    def __init__(self) -> None:
        self.inputs: list[tuple[str, dict[str, Any]]] = []

    def app(self) -> FastAPI:
        api = FastAPI()

        @api.post("/v1/tasks/{task_id}/input")
        async def answer(task_id: str, request: Request) -> Response:
            self.inputs.append((task_id, await request.json()))
            if len(self.inputs) > 1:
                problem = "application/problem+json"
                return JSONResponse(CONFLICT, status_code=409, media_type=problem)
            return JSONResponse(task_json("running"), status_code=202)

        @api.get("/v1/tasks/{task_id}")
        async def get(task_id: str) -> Response:
            return JSONResponse(WAITING)

        @api.get("/v1/tasks/{task_id}/events")
        async def events(task_id: str) -> Response:
            return Response(TIMELINE, media_type="text/event-stream")

        return api


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeApi, str]]:
    api = FakeApi()
    async with serve_app(api.app(), ready=False) as url:
        yield api, url


def test_a_waiting_task_reads_its_question() -> None:
    task = Task.model_validate(WAITING)
    assert task.waiting
    assert not task.done
    assert task.question == Question.model_validate(WAITING["question"])
    assert str(task.question.id) == QUESTION_ID
    assert task.limits is not None
    assert task.limits.max_wait_seconds == 86400
    assert Task.model_validate(task_json("running")).question is None
    older = {k: v for k, v in task_json("running").items() if k != "question"}
    assert Task.model_validate(older).question is None  # a server from before human input


async def test_input_posts_the_answer_and_a_second_one_is_a_conflict_with_the_problem(
    fake: tuple[FakeApi, str],
) -> None:
    api, url = fake
    async with AsyncRelay(url, "rly_test") as relay:
        task = await relay.tasks.input(TASK_ID, "eu-west-1", question_id=QUESTION_ID)
        assert (task.status, task.question) == ("running", None)
        with pytest.raises(ConflictError) as refused:
            await relay.tasks.input(TASK_ID, "again")
    assert refused.value.problem is not None
    assert refused.value.problem.title == "Task not waiting for input"
    assert "POST /v1/tasks/" in str(refused.value)
    assert "not waiting_for_input" in str(refused.value)
    assert api.inputs == [
        (TASK_ID, {"text": "eu-west-1", "question_id": QUESTION_ID}),
        (TASK_ID, {"text": "again"}),  # no question_id: whatever question is pending
    ]

    def blocking() -> None:
        with Relay(url, "rly_test") as relay, pytest.raises(ConflictError):
            relay.tasks.input(TASK_ID, "a third time", question_id=QUESTION_ID)

    await asyncio.to_thread(blocking)
    assert len(api.inputs) == 3  # a 409 is not retried


def cli(url: str, *args: str, stdin: str | None = None) -> Any:
    env = {"RELAY_URL": url, "RELAY_API_KEY": "rly_test", "COLUMNS": "60"}  # a narrow terminal
    return CliRunner().invoke(app, list(args), env=env, input=stdin)


async def test_the_cli_shows_the_question_and_answers_it(fake: tuple[FakeApi, str]) -> None:
    api, url = fake
    shown = await asyncio.to_thread(cli, url, "tasks", "events", TASK_ID)
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    asked = next(i for i, line in enumerate(lines) if "task.input_requested" in line)
    assert lines[asked + 1].strip() == "? Which region?"
    assert lines[asked + 2].strip() == f'answer it: relay-client tasks input {TASK_ID} "<answer>"'
    assert any("task.input_provided" in line and "eu-west-1" in line for line in lines)
    assert any("task.started" in line and "resumed after the answer" in line for line in lines)

    got = await asyncio.to_thread(cli, url, "tasks", "get", TASK_ID)
    assert "asks: Which region?" in got.output

    answered = await asyncio.to_thread(
        cli, url, "tasks", "input", TASK_ID, "eu-west-1", "--question-id", QUESTION_ID, "--json"
    )
    assert answered.exit_code == 0, answered.output
    assert json.loads(answered.output)["status"] == "running"

    again = await asyncio.to_thread(cli, url, "tasks", "input", TASK_ID, "-", stdin="from stdin\n")
    assert again.exit_code == 3  # the API refused the call
    assert "409" in again.output
    assert api.inputs[-1] == (TASK_ID, {"text": "from stdin"})

    blank = await asyncio.to_thread(cli, url, "tasks", "input", TASK_ID, "  ")
    assert blank.exit_code == 2  # a usage error: nothing was sent
    assert len(api.inputs) == 2
