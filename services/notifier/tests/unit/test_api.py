"""The SSE route through the composition root, with in-memory fakes instead of I/O."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI

from notifier.handlers import HANDLERS, dispatcher
from notifier.service import Notifier
from relay_ops.routing import load_routing

from .conftest import ISSUER
from .fakes import Fakes

# a stream that fails to end would otherwise hang in ASGITransport until the global timeout
pytestmark = pytest.mark.timeout(30)


def _auth(tenant: str = "acme", audience: str = "notifier") -> dict[str, str]:
    return ISSUER.headers(audience=audience, tenant_id=tenant)


@pytest.fixture
def notifier(app: FastAPI, client: httpx.AsyncClient) -> Notifier:
    """The running app's own service (what its routes use)."""
    service: Notifier = app.state.service
    return service


def _frames(body: str) -> list[dict[str, str]]:
    frames = []
    for block in body.replace("\r\n", "\n").split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            frames.append(fields)
    return frames


async def test_the_stream_frames_each_event_with_seq_type_and_json(
    client: httpx.AsyncClient, notifier: Notifier, task_events: Callable
) -> None:
    t = task_events()
    for event in t.run(steps=1):
        await notifier.timelines.record(event)
    response = await client.get(f"/internal/tasks/{t.task_id}/events", headers=_auth())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = _frames(response.text)  # the body is complete: the stream ended at the terminal
    assert [f["id"] for f in frames] == ["1", "2", "3", "4", "5"]
    assert frames[-1]["event"] == "task.succeeded"
    data = json.loads(frames[2]["data"])
    assert set(data) == {"type", "seq", "task_id", "occurred_at", "data", "event_id"}
    assert (data["type"], data["seq"], data["task_id"]) == ("task.progressed", 3, str(t.task_id))
    assert data["data"]["step"] == 1
    assert data["occurred_at"].endswith("Z")


@pytest.mark.parametrize("how", ["header", "query"])
async def test_last_event_id_resumes_after_that_seq(
    client: httpx.AsyncClient, notifier: Notifier, task_events: Callable, how: str
) -> None:
    t = task_events()
    for event in t.run(steps=1):
        await notifier.timelines.record(event)
    headers, params = _auth(), {}
    if how == "header":
        headers["Last-Event-ID"] = "3"
    else:
        params["last_event_id"] = "3"
    response = await client.get(
        f"/internal/tasks/{t.task_id}/events", headers=headers, params=params
    )
    assert [f["id"] for f in _frames(response.text)] == ["4", "5"]


@pytest.mark.parametrize(
    ("where", "value"),
    [("header", "abc"), ("header", "-1"), ("header", "1.5"), ("query", "٣"), ("query", "x")],
)
async def test_an_invalid_last_event_id_is_a_400_problem(
    client: httpx.AsyncClient, task_events: Callable, where: str, value: str
) -> None:
    t = task_events()
    headers = {**_auth(), "Last-Event-ID": value} if where == "header" else _auth()
    params = {"last_event_id": value} if where == "query" else {}
    response = await client.get(
        f"/internal/tasks/{t.task_id}/events", headers=headers, params=params
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert "Last-Event-ID" in response.json()["detail"]


async def test_resuming_after_the_terminal_event_answers_204(
    client: httpx.AsyncClient, notifier: Notifier, task_events: Callable
) -> None:
    t = task_events()
    for event in t.run(steps=1):
        await notifier.timelines.record(event)
    response = await client.get(
        f"/internal/tasks/{t.task_id}/events", headers={**_auth(), "Last-Event-ID": "5"}
    )
    assert response.status_code == 204  # an EventSource stops reconnecting
    assert response.content == b""


async def test_another_tenants_timeline_is_a_404(
    client: httpx.AsyncClient, notifier: Notifier, task_events: Callable
) -> None:
    t = task_events(tenant_id="acme")
    await notifier.timelines.record(t.submitted())
    response = await client.get(f"/internal/tasks/{t.task_id}/events", headers=_auth("globex"))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nonsense"}, _auth(audience="tasks")],
    ids=["none", "garbage", "wrong-audience"],
)
async def test_the_stream_needs_a_token_for_the_notifier(
    client: httpx.AsyncClient, task_events: Callable, headers: dict[str, str]
) -> None:
    response = await client.get(f"/internal/tasks/{task_events().task_id}/events", headers=headers)
    assert response.status_code == 401


def test_the_handler_registry_covers_exactly_what_routing_routes_here() -> None:
    assert set(HANDLERS) == set(load_routing().services["notifier"].consumes)


async def test_the_dispatcher_puts_consumed_events_on_the_timeline(
    fakes: Fakes, notifier: Notifier, task_events: Callable
) -> None:
    t = task_events()
    for event in t.run(steps=1):
        await dispatcher(notifier).dispatch(event)
    assert fakes.store.timeline_types(t.task_id)[-1] == "task.succeeded"
