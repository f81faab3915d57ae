"""A task's events are the notifier's stream, relayed as it comes and closed when either side
goes."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from relay_shared.problems import Problem

from .fakes import (
    ACME_KEY,
    GLOBEX_KEY,
    FakeInternalServices,
    FakeStream,
    json_reply,
    problem_reply,
    task_document,
)

TASK = str(uuid.uuid4())
EVENTS_PATH = f"/internal/tasks/{TASK}/events"
SSE_CHUNKS = [
    b": connected\n\n",
    b'id: 1\nevent: task.submitted\ndata: {"type": "task.submitted", "seq": 1}\n\n',
    b'id: 2\nevent: task.started\ndata: {"type": "task.started",',
    b' "seq": 2}\n\n',
]


@pytest.fixture(autouse=True)
def acme_task(services: FakeInternalServices) -> None:
    services.answer("tasks", "GET", f"/internal/tasks/{TASK}", json_reply(200, task_document(TASK)))


async def test_the_notifier_stream_is_relayed_byte_for_byte(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    stream = FakeStream(SSE_CHUNKS)
    services.stream_from("notifier", EVENTS_PATH, stream)

    response = await acme.get(f"/v1/tasks/{TASK}/events")

    assert response.status_code == 200
    assert response.content == b"".join(SSE_CHUNKS)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert stream.closed
    assert services.calls[-1].tenant_id == "acme"


async def test_the_resume_point_is_forwarded(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    services.stream_from("notifier", EVENTS_PATH, FakeStream(SSE_CHUNKS))

    await acme.get(f"/v1/tasks/{TASK}/events", headers={"Last-Event-ID": "7"})
    await acme.get(f"/v1/tasks/{TASK}/events", params={"last_event_id": "9"})

    by_header, by_query = [c for c in services.calls if c.service == "notifier"]
    assert by_header.headers["Last-Event-ID"] == "7"
    assert dict(by_query.params) == {"last_event_id": "9"}
    assert "Last-Event-ID" not in by_query.headers


@pytest.mark.parametrize("value", ["x", "-1", "1.5", "1e3", "", "2147483648"])
@pytest.mark.parametrize("where", ["header", "query"])
async def test_a_resume_point_that_is_not_a_seq_is_a_422_and_reaches_no_notifier(
    acme: httpx.AsyncClient, services: FakeInternalServices, value: str, where: str
) -> None:
    """The contract's answer to bad input (the notifier's own 400 never gets that far)."""
    services.stream_from("notifier", EVENTS_PATH, FakeStream(SSE_CHUNKS))
    name = "Last-Event-ID" if where == "header" else "last_event_id"

    response = await acme.get(
        f"/v1/tasks/{TASK}/events",
        headers={name: value} if where == "header" else {},
        params={name: value} if where == "query" else {},
    )

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    [error] = response.json()["errors"]
    assert error["location"] == f"{where}.{name}"
    assert "notifier" not in services.services_called()


async def test_a_resume_point_reaches_the_notifier_as_a_plain_seq(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    services.stream_from("notifier", EVENTS_PATH, FakeStream(SSE_CHUNKS))

    await acme.get(f"/v1/tasks/{TASK}/events", headers={"Last-Event-ID": " 007 "})

    [call] = [c for c in services.calls if c.service == "notifier"]
    assert call.headers["Last-Event-ID"] == "7"


async def test_a_notifier_refusal_is_relayed_and_the_stream_closed(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    refusal = problem_reply(404, "Not Found", "no timeline")
    stream = FakeStream(status=404, headers=refusal.headers, body=refusal.body)
    services.stream_from("notifier", EVENTS_PATH, stream)

    response = await acme.get(f"/v1/tasks/{TASK}/events")

    assert response.status_code == 404
    assert response.content == refusal.body
    assert stream.closed


async def test_nothing_more_to_follow_is_relayed_as_204(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    stream = FakeStream(status=204, headers={}, body=b"")
    services.stream_from("notifier", EVENTS_PATH, stream)

    response = await acme.get(f"/v1/tasks/{TASK}/events", headers={"Last-Event-ID": "6"})

    assert (response.status_code, response.content) == (204, b"")
    assert stream.closed


async def test_a_failing_notifier_is_a_502(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    stream = FakeStream(status=500, headers={"content-type": "text/plain"}, body=b"Traceback ...")
    services.stream_from("notifier", EVENTS_PATH, stream)

    response = await acme.get(f"/v1/tasks/{TASK}/events")

    assert response.status_code == 502
    assert "Traceback" not in response.text
    assert stream.closed


async def test_an_unreachable_notifier_is_a_503(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    services.unreachable.add("notifier")

    response = await acme.get(f"/v1/tasks/{TASK}/events")

    assert response.status_code == 503


async def test_the_upstream_closes_as_soon_as_the_client_goes(
    app: FastAPI, services: FakeInternalServices
) -> None:
    # driven at the ASGI level: the client hangs up while the stream is quiet
    stream = FakeStream(SSE_CHUNKS[:2], endless=True)
    services.stream_from("notifier", EVENTS_PATH, stream)
    got_an_event = asyncio.Event()
    sent: list[dict[str, Any]] = []
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await got_an_event.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and b"seq" in message.get("body", b""):
            got_an_event.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": f"/v1/tasks/{TASK}/events",
        "raw_path": f"/v1/tasks/{TASK}/events".encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"gateway"), (b"authorization", f"Bearer {ACME_KEY}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("gateway", 80),
    }

    await asyncio.wait_for(app(scope, receive, send), timeout=5)

    assert sent[0]["status"] == 200
    assert stream.sent == 2
    assert stream.closed


async def test_a_task_confirmed_as_the_tenants_is_not_asked_about_again_nor_for_another_tenant(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    """Many followers of one task cost tasks one lookup; another tenant is still asked about
    (and refused), and a refusal is not remembered."""
    for _ in range(3):
        services.stream_from("notifier", EVENTS_PATH, FakeStream(SSE_CHUNKS))
        assert (await acme.get(f"/v1/tasks/{TASK}/events")).status_code == 200
    asked = [c for c in services.calls if c.service == "tasks"]
    assert [(c.path, c.tenant_id) for c in asked] == [(f"/internal/tasks/{TASK}", "acme")]

    services.answer(
        "tasks", "GET", f"/internal/tasks/{TASK}", problem_reply(404, "Not Found", "no such task")
    )
    globex = {"Authorization": f"Bearer {GLOBEX_KEY}"}
    for _ in range(2):
        refused = await acme.get(f"/v1/tasks/{TASK}/events", headers=globex)
        assert refused.status_code == 404
    asked = [c for c in services.calls if c.service == "tasks"]
    assert [c.tenant_id for c in asked] == ["acme", "globex", "globex"]
    assert [c.tenant_id for c in services.calls if c.service == "notifier"] == ["acme"] * 3


async def test_followers_share_the_notifier_stream_but_another_tenant_never_joins_it(
    app: FastAPI, services: FakeInternalServices
) -> None:
    """The BOLA case of shared streams (timelines.py): while acme's clients share the task's
    stream, globex asking for the same task is refused before anything is shared."""
    stream = FakeStream(SSE_CHUNKS[:2], endless=True)
    services.stream_from("notifier", EVENTS_PATH, stream)
    gateway = app.state.service
    followers = [
        await gateway.open_timeline("acme", uuid.UUID(TASK), last_event_id=None, after=None)
        for _ in range(2)
    ]
    services.answer(
        "tasks", "GET", f"/internal/tasks/{TASK}", problem_reply(404, "Not Found", "no such task")
    )

    with pytest.raises(Problem) as refused:
        await gateway.open_timeline("globex", uuid.UUID(TASK), last_event_id=None, after=None)

    assert refused.value.status == 404
    assert [c.tenant_id for c in services.calls if c.service == "notifier"] == ["acme"]
    for follower in followers:
        await follower.aclose()
    assert stream.closed
