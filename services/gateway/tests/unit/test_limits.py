"""What the gateway refuses to read or forward: oversize bodies, non-JSON, malformed tasks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateway.limits import BodySizeLimit

from .conftest import MAX_BODY_BYTES
from .fakes import FakeInternalServices, json_reply, task_document


def _task_of_size(size: int) -> bytes:
    envelope = b'{"prompt": ""}'
    return b'{"prompt": "' + b"x" * (size - len(envelope)) + b'"}'


async def _chunked(body: bytes, chunk: int = 100) -> AsyncIterator[bytes]:
    for start in range(0, len(body), chunk):
        yield body[start : start + chunk]


@pytest.fixture(autouse=True)
def tasks_accepts(services: FakeInternalServices) -> None:
    services.answer("tasks", "POST", "/internal/tasks", json_reply(202, task_document("t")))


async def test_a_body_at_the_limit_is_forwarded(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    body = _task_of_size(MAX_BODY_BYTES)

    response = await acme.post(
        "/v1/tasks", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 202
    assert services.calls[0].body == body


async def test_a_declared_length_over_the_limit_is_413(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    body = _task_of_size(MAX_BODY_BYTES + 1)

    response = await acme.post(
        "/v1/tasks", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
    assert str(MAX_BODY_BYTES) in response.json()["detail"]
    assert services.calls == []


async def test_a_chunked_body_over_the_limit_is_413(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    body = _task_of_size(MAX_BODY_BYTES + 1)

    response = await acme.post(
        "/v1/tasks", content=_chunked(body), headers={"content-type": "application/json"}
    )

    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
    assert services.calls == []


async def test_a_chunked_body_within_the_limit_is_forwarded_whole(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    body = _task_of_size(MAX_BODY_BYTES)

    response = await acme.post(
        "/v1/tasks", content=_chunked(body), headers={"content-type": "application/json"}
    )

    assert response.status_code == 202
    assert services.calls[0].body == body


async def test_an_endless_body_is_read_no_further_than_the_limit() -> None:
    chunk = b"x" * 100
    reads = 0
    sent: list[dict[str, Any]] = []
    reached_app = False

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal reached_app
        reached_app = True
        while (await receive())["more_body"]:
            pass

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/tasks", "headers": []}
    await asyncio.wait_for(BodySizeLimit(app, max_bytes=1000)(scope, receive, send), timeout=5)

    assert reached_app
    assert reads == 11  # 1100 bytes: the read that crossed 1000 was the last
    assert sent[0]["status"] == 413


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_a_task_that_is_not_json_is_415(
    acme: httpx.AsyncClient, services: FakeInternalServices, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}

    response = await acme.post("/v1/tasks", content=b'{"prompt": "x"}', headers=headers)

    assert response.status_code == 415
    assert response.headers["content-type"].startswith("application/problem+json")
    assert services.calls == []


async def test_malformed_json_is_400(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    response = await acme.post(
        "/v1/tasks", content=b'{"prompt": "x",', headers={"content-type": "application/json"}
    )

    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert services.calls == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "scripted"}, "body.prompt"),
        ({"prompt": 42}, "body.prompt"),
        ({"prompt": "x", "priority": "high"}, "body.priority"),
        ({"prompt": "x", "metadata": ["a"]}, "body.metadata"),
        (["prompt"], "body"),
    ],
)
async def test_a_task_of_the_wrong_shape_is_422_naming_the_field(
    acme: httpx.AsyncClient, services: FakeInternalServices, body: Any, field: str
) -> None:
    response = await acme.post("/v1/tasks", json=body)

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in [error["location"] for error in response.json()["errors"]]
    assert services.calls == []


async def test_a_large_body_on_a_read_route_is_413_too(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    response = await acme.request("GET", "/v1/tasks", content=b"x" * (MAX_BODY_BYTES + 1))

    assert response.status_code == 413
    assert services.calls == []


async def test_json_nested_too_deeply_is_400_not_a_crash(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    body = b'{"prompt": "x", "metadata": {"a": ' + b"[" * 1000 + b"]" * 1000 + b"}}"

    response = await acme.post(
        "/v1/tasks", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 400
    assert services.calls == []


@pytest.mark.parametrize(
    ("limits", "field"),
    [
        ({"max_turns": "5"}, "body.limits.max_turns"),
        ({"max_turns": 2.5}, "body.limits.max_turns"),
        ({"max_output_tokens": True}, "body.limits.max_output_tokens"),
        ({"max_wall_seconds": "60"}, "body.limits.max_wall_seconds"),
        ({"max_cost_usd": [1]}, "body.limits.max_cost_usd"),
        ({"max_steps": 3}, "body.limits.max_steps"),
        ("generous", "body.limits"),
    ],
)
async def test_limits_of_the_wrong_shape_are_422_naming_the_field(
    acme: httpx.AsyncClient, services: FakeInternalServices, limits: Any, field: str
) -> None:
    response = await acme.post("/v1/tasks", json={"prompt": "x", "limits": limits})

    assert response.status_code == 422
    assert field in [error["location"] for error in response.json()["errors"]]
    assert services.calls == []


async def test_limits_that_are_not_finite_numbers_are_422(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    body = b'{"prompt": "x", "limits": {"max_cost_usd": NaN, "max_wall_seconds": Infinity}}'

    response = await acme.post(
        "/v1/tasks", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 422
    assert {error["location"] for error in response.json()["errors"]} == {
        "body.limits.max_cost_usd",
        "body.limits.max_wall_seconds",
    }
    assert services.calls == []


async def test_limit_values_are_left_to_tasks_which_knows_the_ranges(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    body = {"prompt": "x", "limits": {"max_turns": 0, "max_cost_usd": 1e9}}

    response = await acme.post("/v1/tasks", json=body)

    assert response.status_code == 202  # the fake tasks accepts; the real one answers 422
    assert services.calls[0].body is not None


CANCEL = "/v1/tasks/00000000-0000-4000-8000-000000000001/cancel"


@pytest.fixture
def tasks_cancels(services: FakeInternalServices) -> None:
    services.answer(
        "tasks",
        "POST",
        CANCEL.replace("/v1/", "/internal/"),
        json_reply(202, task_document("t", status="cancelling")),
    )


@pytest.mark.usefixtures("tasks_cancels")
@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b'{"reason": "x"}', "text/plain", 415),
        (b'{"reason": ', "application/json", 400),
        (b'{"reason": 7}', "application/json", 422),
        (b'{"why": "x"}', "application/json", 422),
        (b'{"reason": "' + b"r" * 501 + b'"}', "application/json", 422),
        (b"[]", "application/json", 422),
    ],
)
async def test_a_cancel_body_that_is_not_a_reason_reaches_no_service(
    acme: httpx.AsyncClient,
    services: FakeInternalServices,
    content: bytes,
    content_type: str,
    status: int,
) -> None:
    response = await acme.post(CANCEL, content=content, headers={"content-type": content_type})

    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    assert services.calls == []


@pytest.mark.usefixtures("tasks_cancels")
async def test_a_cancel_body_over_the_limit_is_413(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    reason = b"r" * MAX_BODY_BYTES
    response = await acme.post(
        CANCEL,
        content=b'{"reason": "' + reason + b'"}',
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 413
    assert services.calls == []


@pytest.mark.usefixtures("tasks_cancels")
async def test_an_empty_cancel_body_needs_no_content_type(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    response = await acme.post(CANCEL, content=b"", headers={"content-type": "text/plain"})

    assert response.status_code == 202
    assert services.calls[0].body is None
