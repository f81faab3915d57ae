"""Retries, errors and timeouts against a real HTTP server on a local port (a small FastAPI app
that answers as the API does when it is busy, away or slow)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from relay_client import (
    AsyncRelay,
    InternalServerError,
    RateLimitError,
    Relay,
    ServiceUnavailableError,
    UnprocessableEntityError,
)
from relay_devkit.testing import serve_app

PAGE: dict[str, Any] = {"items": [], "next_cursor": None}


def _problem(status: int, title: str, **extra: Any) -> dict[str, Any]:
    return {"type": "about:blank", "title": title, "status": status, **extra}


class Script:
    """What the server answers, call after call, and what it was asked."""

    def __init__(self) -> None:
        self.answers: list[Response] = []
        self.calls: list[tuple[str, dict[str, str], float]] = []

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.api_route("/{path:path}", methods=["GET", "POST", "PATCH", "DELETE"])
        async def answer(path: str, request: Request) -> Response:
            self.calls.append(
                (f"{request.method} /{path}", dict(request.headers), time.monotonic())
            )
            if self.answers:
                return self.answers.pop(0)
            return JSONResponse(PAGE)

        return app


@pytest.fixture
async def server() -> AsyncIterator[tuple[Script, str]]:
    script = Script()
    async with serve_app(script.app(), ready=False) as url:
        yield script, url


def busy(status: int, retry_after: str | None = None) -> Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    title = "Too Many Requests" if status == 429 else "Service Unavailable"
    return JSONResponse(_problem(status, title), status_code=status, headers=headers)


async def test_429_and_503_are_retried_after_what_retry_after_asks(
    server: tuple[Script, str],
) -> None:
    script, url = server
    script.answers = [busy(429, "1"), busy(503, "0")]
    async with AsyncRelay(url, "rly_test") as relay:
        page = await relay.tasks.list_page()
    assert page.items == []
    assert len(script.calls) == 3
    assert script.calls[1][2] - script.calls[0][2] >= 0.95  # waited the second it was told


async def test_a_create_is_retried_with_the_same_idempotency_key(
    server: tuple[Script, str],
) -> None:
    script, url = server
    task = {
        "id": "5f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f", "status": "queued", "prompt": "p",
        "model": "m", "metadata": {}, "limits": None, "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z", "started_at": None, "finished_at": None,
        "usage": {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0, "cost_usd": 0.0},
        "error": None, "result": None,
    }  # fmt: skip
    script.answers = [busy(503, "0"), JSONResponse(task, status_code=202)]

    def create() -> str:  # the blocking client, beside the server's event loop
        with Relay(url, "rly_test") as relay:
            return str(relay.tasks.create("p").id)

    created = await asyncio.to_thread(create)
    assert created == task["id"]
    keys = [headers["idempotency-key"] for _, headers, _ in script.calls]
    assert len(keys) == 2
    assert keys[0] == keys[1]


async def test_retries_end_with_the_error_and_a_long_retry_after_is_not_waited_out(
    server: tuple[Script, str],
) -> None:
    script, url = server
    script.answers = [busy(503, "0")] * 3
    async with AsyncRelay(url, "rly_test", max_retries=2) as relay:
        with pytest.raises(ServiceUnavailableError) as gone:
            await relay.tasks.list_page()
    assert len(script.calls) == 3
    assert gone.value.problem is not None
    assert gone.value.problem.status == 503

    script.calls.clear()
    script.answers = [busy(429, "3600")]
    async with AsyncRelay(url, "rly_test") as relay:
        with pytest.raises(RateLimitError) as limited:
            await asyncio.wait_for(relay.tasks.list_page(), timeout=10)
    assert limited.value.retry_after == 3600
    assert len(script.calls) == 1


async def test_a_create_of_an_endpoint_is_not_repeated_after_a_502(
    server: tuple[Script, str],
) -> None:
    """The API may have made it: without an Idempotency-Key a POST is not sent twice."""
    script, url = server
    script.answers = [JSONResponse(_problem(502, "Bad Gateway"), status_code=502)]
    async with AsyncRelay(url, "rly_test") as relay:
        with pytest.raises(InternalServerError):
            await relay.webhooks.create("https://example.com/hooks")
    assert [call for call, _, _ in script.calls] == ["POST /v1/webhooks"]


async def test_a_422_says_which_field_and_why(server: tuple[Script, str]) -> None:
    script, url = server
    errors = [{"location": "body.limits.max_turns", "message": "Input should be >= 1"}]
    script.answers = [
        JSONResponse(_problem(422, "Invalid request", errors=errors), status_code=422)
    ]
    async with AsyncRelay(url, "rly_test") as relay:
        with pytest.raises(UnprocessableEntityError) as invalid:
            await relay.tasks.create("p", limits={"max_turns": 0})
    message = str(invalid.value)
    assert "POST /v1/tasks -> 422 Invalid request" in message
    assert "body.limits.max_turns: Input should be >= 1" in message
    assert len(script.calls) == 1  # a 422 is not retried


def test_no_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RELAY_API_KEY", raising=False)
    with pytest.raises(ValueError, match="RELAY_API_KEY"):
        Relay("http://127.0.0.1:9")


async def _heartbeats() -> AsyncIterator[bytes]:
    while True:
        yield b": heartbeat\n\n"
        await asyncio.sleep(0.2)


RUNNING_ID = "5f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"
RUNNING: dict[str, Any] = {
    "id": RUNNING_ID, "status": "running", "prompt": "p",
    "model": "m", "metadata": {}, "limits": None, "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:00Z", "started_at": None, "finished_at": None,
    "usage": {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0,
              "cache_read_input_tokens": 0, "cost_usd": 0.0},
    "error": None, "result": None,
}  # fmt: skip


async def test_wait_gives_up_at_its_timeout_while_the_task_runs_on(
    server: tuple[Script, str],
) -> None:
    """A stream with heartbeats and no events (a long step) must not hold wait() past it."""
    script, url = server
    script.answers = [StreamingResponse(_heartbeats(), media_type="text/event-stream")]
    script.answers += [JSONResponse(RUNNING) for _ in range(40)]
    async with AsyncRelay(url, "rly_test") as relay:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await relay.tasks.wait(RUNNING_ID, timeout=1)
    assert time.monotonic() - started < 4

    def blocking() -> float:
        with Relay(url, "rly_test") as relay:
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                relay.tasks.wait(RUNNING_ID, timeout=1)
            return time.monotonic() - started

    assert await asyncio.to_thread(blocking) < 4
