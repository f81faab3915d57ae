"""The BOLA matrix (issue 16): for every public route that takes an id, tenant B asking for
tenant A's object gets exactly what a missing object gets -- 404 problem+json, with the same
title -- and nothing of A's changes (its tasks' status, its artifacts, its webhook endpoint's
fields, log and secret).

The matrix is the table ``ROUTES`` below, one row per route (plus a few variants: B's own ticket,
A's object named under B's own parent, the WebSocket subscription); each row is one test. The
table is checked against contracts/openapi.json: a public route with a path parameter that has
no row fails ``test_every_public_route_with_an_id_has_a_row``, so a route cannot be added without
its BOLA case.

A's objects are made once for the module, on tenants of the module's own: a finished task with
an artifact, a running task (long ``/sleep``: a cancel that got through would show), a task
waiting for input (an answer that got through would resume it), a webhook
endpoint at a local receiver whose one delivery (a test event) is in its log; B has a finished
task and an endpoint of its own for the cross-object variants.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from standardwebhooks import Webhook

from relay_devkit.api_client import PublicApi
from relay_devkit.receiver import Receiver, serve_receiver
from relay_ops.stack.process import RunningStack

pytestmark = pytest.mark.e2e
in_module_loop = pytest.mark.asyncio(loop_scope="module")  # the loop of ``world`` and its receiver

OPENAPI = Path(__file__).resolve().parents[2] / "contracts" / "openapi.json"
PROBLEM = "application/problem+json"
METHODS = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}


# --- the objects -----------------------------------------------------------------------------


@dataclass
class World:
    stack: RunningStack
    a: PublicApi
    b: PublicApi
    receiver: Receiver
    tag: str
    done_task: dict[str, Any]  # A's, succeeded, with an artifact
    running_task: dict[str, Any]  # A's, running for minutes
    waiting_task: dict[str, Any]  # A's, waiting for an answer
    artifact: dict[str, Any]  # A's, of done_task
    webhook: dict[str, Any]  # A's, with its secret
    b_task: dict[str, Any]  # B's, succeeded
    b_webhook: dict[str, Any]  # B's
    deliveries_to_a: int = field(default=0)  # what A's receiver path has had so far

    def a_objects(self) -> set[str]:
        """The ids of every object of A's."""
        return {
            self.done_task["id"],
            self.running_task["id"],
            self.waiting_task["id"],
            self.artifact["id"],
            self.webhook["id"],
        }

    def a_ids(self) -> dict[str, str]:
        return {
            "task_id": self.done_task["id"],
            "artifact_id": self.artifact["id"],
            "webhook_id": self.webhook["id"],
        }


async def until(check: Callable[[], Any], *, within: float = 30) -> Any:
    """``check()``'s first truthy value (awaited if it is a coroutine function)."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.1)


async def a_test_delivery_verifies(world: World) -> None:
    """A's endpoint still delivers to A's URL, signed with A's original secret alone (a
    rotation would add a second signature; a changed URL would not reach the receiver)."""
    queued = await world.a.http.post(f"/v1/webhooks/{world.webhook['id']}/test")
    assert queued.status_code == 202, queued.text
    world.deliveries_to_a += 1
    received = await world.receiver.settled(f"/ok/{world.tag}/a", world.deliveries_to_a)
    last = received[-1]
    assert last.headers["webhook-id"] == queued.json()["event_id"]
    assert len(last.headers["webhook-signature"].split(" ")) == 1, "a second secret is live"
    body = Webhook(world.webhook["secret"]).verify(last.body, last.headers)
    assert body["type"] == "webhook.test"

    async def logged() -> bool:
        deliveries = await world.a.webhook_deliveries(world.webhook["id"])
        return len(deliveries) == world.deliveries_to_a and all(
            d["status"] == "succeeded" for d in deliveries
        )

    await until(logged)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(stack: RunningStack) -> AsyncIterator[World]:
    a = PublicApi(stack.gateway_url, stack.create_key(f"bola-a-{uuid.uuid4().hex[:6]}"))
    b = PublicApi(stack.gateway_url, stack.create_key(f"bola-b-{uuid.uuid4().hex[:6]}"))
    tag = uuid.uuid4().hex[:8]
    async with serve_receiver() as receiver:
        try:
            done, b_task = await asyncio.gather(
                a.submit("A's secret prompt.\n/steps 1\n/artifact notes.md"), b.submit("/steps 1")
            )
            running = await a.submit("A's long prompt.\n/steps 200\n/sleep 2")
            waiting = await a.submit("A's question.\n/ask A's secret question?")
            done = await a.finished_task(done["id"], within=60)
            b_task = await b.finished_task(b_task["id"], within=60)
            assert done["status"] == b_task["status"] == "succeeded", (done, b_task)
            # the artifact is recorded from its own event, which may come after the task's end
            [artifact] = await until(lambda: a.artifacts(done["id"]))
            running = await until(
                lambda: _when_running(a, running["id"]), within=60
            )  # a cancel that got through would move it to cancelling
            waiting = await until(lambda: _when_waiting(a, waiting["id"]), within=60)
            webhook = await a.create_webhook(
                f"{receiver.url}/ok/{tag}/a", event_types=["task.failed"], description="A's"
            )
            b_webhook = await b.create_webhook(
                f"{receiver.url}/ok/{tag}/b", event_types=["task.failed"]
            )
            world = World(
                stack,
                a,
                b,
                receiver,
                tag,
                done,
                running,
                waiting,
                artifact,
                webhook,
                b_task,
                b_webhook,
            )
            await a_test_delivery_verifies(world)  # one delivery in A's log
            yield world
        finally:
            for client in (a, b):
                for endpoint in await client.webhooks():
                    await client.delete_webhook(endpoint["id"])
            await a.http.post(f"/v1/tasks/{running['id']}/cancel")
            await a.http.post(f"/v1/tasks/{waiting['id']}/cancel")
            await a.aclose()
            await b.aclose()


async def _when_waiting(api: PublicApi, task_id: str) -> dict[str, Any] | None:
    task = await api.task(task_id)
    assert task["status"] in {"queued", "running", "waiting_for_input"}, task
    return task if task["status"] == "waiting_for_input" else None


async def _when_running(api: PublicApi, task_id: str) -> dict[str, Any] | None:
    task = await api.task(task_id)
    assert task["status"] in {"queued", "running"}, task
    return task if task["status"] == "running" else None


async def a_view(world: World) -> dict[str, Any]:
    """Everything of A's that a request of B's could change, as A sees it."""
    a, done, webhook_id = world.a, world.done_task["id"], world.webhook["id"]
    artifact = await a.http.get(f"/v1/tasks/{done}/artifacts/{world.artifact['id']}")
    assert artifact.status_code == 200, artifact.text
    running = await a.task(world.running_task["id"])
    waiting = await a.task(world.waiting_task["id"])
    return {
        "done task": await a.task(done),
        "running task": {k: running[k] for k in ("status", "prompt", "metadata", "error")},
        "waiting task": waiting,
        "artifacts": await a.artifacts(done),
        # the presigned URL and its expiry are new on every answer
        "artifact": {k: v for k, v in artifact.json().items() if not k.startswith("download_url")},
        "tasks": sorted(t["id"] for t in await a.all_tasks()),
        "webhooks": await a.webhooks(),
        "webhook": await a.webhook(webhook_id),
        "deliveries": await a.webhook_deliveries(webhook_id),
    }


# --- the matrix ------------------------------------------------------------------------------


Ids = Callable[[World], dict[str, str]]
Body = Callable[[World], dict[str, Any]]


@dataclass(frozen=True)
class Route:
    """B's request for A's object on ``method path`` (the OpenAPI route), which must answer
    exactly as for a missing object.

    ``ids``: the path parameters (default: A's finished task, its artifact, A's endpoint);
    ``body``: the JSON body; ``variant``: the test id of a second row on the same route;
    ``ticket``: B authenticates with its own ticket (``?ticket=``), not its key;
    ``stream``: the answer would be an SSE stream (only the status is read)."""

    method: str
    path: str
    ids: Ids = World.a_ids
    body: Body | None = None
    variant: str = ""
    ticket: bool = False
    stream: bool = False

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}" + (f" [{self.variant}]" if self.variant else "")


def _running(world: World) -> dict[str, str]:
    return {"task_id": world.running_task["id"]}


def _waiting(world: World) -> dict[str, str]:
    return {"task_id": world.waiting_task["id"]}


def _a_artifact_under_b_task(world: World) -> dict[str, str]:
    return {"task_id": world.b_task["id"], "artifact_id": world.artifact["id"]}


def _b_webhook(world: World) -> dict[str, str]:
    return {"webhook_id": world.b_webhook["id"]}


def _replay_a_task(world: World) -> dict[str, Any]:
    return {"task_id": world.done_task["id"], "after": 0}


def _take_over(world: World) -> dict[str, Any]:
    return {
        "url": f"{world.receiver.url}/ok/{world.tag}/stolen",
        "event_types": ["*"],
        "description": "B's now",
        "enabled": False,
    }


TASK = "/v1/tasks/{task_id}"
ARTIFACT = f"{TASK}/artifacts/{{artifact_id}}"
HOOK = "/v1/webhooks/{webhook_id}"

ROUTES = [
    Route("GET", TASK),
    Route("POST", f"{TASK}/cancel", _running, body=lambda _: {"reason": "B's"}),
    Route("POST", f"{TASK}/input", _waiting, body=lambda _: {"text": "B's answer"}),
    Route("GET", f"{TASK}/events", _running, stream=True),
    Route("GET", f"{TASK}/events", _running, stream=True, ticket=True, variant="B's ticket"),
    Route("GET", f"{TASK}/artifacts"),
    Route("GET", ARTIFACT),
    Route("GET", ARTIFACT, _a_artifact_under_b_task, variant="under B's task"),
    Route("GET", f"{ARTIFACT}/content"),
    Route("GET", f"{ARTIFACT}/content", _a_artifact_under_b_task, variant="under B's task"),
    Route("GET", HOOK),
    Route("PATCH", HOOK, body=_take_over),
    Route("DELETE", HOOK),
    Route("POST", f"{HOOK}/rotate-secret"),
    Route("GET", f"{HOOK}/deliveries"),
    Route("POST", f"{HOOK}/replay", body=_replay_a_task),
    Route("POST", f"{HOOK}/replay", _b_webhook, body=_replay_a_task, variant="to B's endpoint"),
    Route("POST", f"{HOOK}/test"),
]


def openapi_routes_with_ids() -> set[str]:
    document = json.loads(OPENAPI.read_text())
    return {
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        if "{" in path
        for method in item
        if method in METHODS
    }


def test_every_public_route_with_an_id_has_a_row() -> None:
    routes = openapi_routes_with_ids()
    covered = {f"{r.method} {r.path}" for r in ROUTES}
    assert not routes - covered, f"public routes without a BOLA row: {sorted(routes - covered)}"
    assert not covered - routes, f"rows for routes not in the API: {sorted(covered - routes)}"
    assert len({r.id for r in ROUTES}) == len(ROUTES), "two rows with the same id"


# --- the probes ------------------------------------------------------------------------------


def _missing(value: Any, a_objects: set[str]) -> Any:
    """``value`` with every id of A's replaced by one of nothing (B's own ids stay)."""
    if isinstance(value, dict):
        return {k: _missing(v, a_objects) for k, v in value.items()}
    if isinstance(value, list):
        return [_missing(v, a_objects) for v in value]
    return str(uuid.uuid4()) if isinstance(value, str) and value in a_objects else value


async def b_asks(world: World, route: Route, *, missing: bool = False) -> httpx.Response:
    """B's request on ``route`` (``missing``: with A's ids replaced by ids of nothing); a
    stream's body is read only if it is not SSE."""
    ids, body = route.ids(world), route.body(world) if route.body else None
    if missing:
        ids, body = _missing(ids, world.a_objects()), _missing(body, world.a_objects())
        assert not set(ids.values()) & world.a_objects()
    path = route.path.format(**ids)
    if route.ticket:
        ticket = await world.b.ws_ticket()
        client = httpx.AsyncClient(base_url=world.stack.gateway_url, timeout=15)
        params = {"ticket": ticket}
    else:
        client, params = world.b.http, {}
    try:
        request = client.build_request(route.method, path, json=body, params=params)
        response = await client.send(request, stream=True)
        try:
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                await response.aread()
        finally:
            await response.aclose()
        return response
    finally:
        if route.ticket:
            await client.aclose()


def assert_missing(response: httpx.Response, world: World) -> dict[str, Any]:
    assert response.status_code == 404, (response.status_code, response.headers)
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    assert "location" not in response.headers  # no redirect to A's content
    problem: dict[str, Any] = response.json()
    assert problem["status"] == 404
    assert problem["title"]
    secrets = (
        world.done_task["prompt"],
        world.running_task["prompt"],
        world.waiting_task["question"]["text"],
        world.webhook["url"],
    )
    for secret in secrets:
        assert secret not in response.text
    return problem


@in_module_loop
@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.id)
async def test_another_tenants_object_is_a_404_like_a_missing_one_and_nothing_changes(
    world: World, route: Route
) -> None:
    before = await a_view(world)

    answer = assert_missing(await b_asks(world, route), world)
    # exactly what a missing object gets: the same status and title, nothing to tell them apart
    missing = assert_missing(await b_asks(world, route, missing=True), world)
    assert (answer["status"], answer["title"]) == (missing["status"], missing["title"])

    await asyncio.sleep(0.5)  # anything B's request had set off would have started by now
    assert await a_view(world) == before
    if "webhook_id" in route.ids(world):
        await a_test_delivery_verifies(world)
    assert world.receiver.at(f"/ok/{world.tag}/stolen") == []
    assert world.receiver.at(f"/ok/{world.tag}/b") == []


@in_module_loop
async def test_the_owner_gets_what_the_matrix_denies(world: World) -> None:
    """The rows name real objects: A's own safe requests on the same ids succeed (a 404 above
    is the tenant check, not a wrong id), and B's ticket does open B's own task."""
    for route in ROUTES:
        if route.method != "GET" or route.ids is not World.a_ids:
            continue
        response = await world.a.http.get(route.path.format(**route.ids(world)))
        assert response.status_code in {200, 302}, (route.id, response.text)
    async with httpx.AsyncClient(base_url=world.stack.gateway_url, timeout=15) as anonymous:
        params = {"ticket": await world.b.ws_ticket()}
        own = await anonymous.get(f"/v1/tasks/{world.b_task['id']}/events", params=params)
        assert own.status_code == 200, own.text
        assert own.headers["content-type"].startswith("text/event-stream")


@in_module_loop
async def test_b_ticket_does_not_subscribe_to_a_task_over_websocket(world: World) -> None:
    """The WebSocket is not in the OpenAPI document; its subscription is the same check: B's
    ticket (and B's key) subscribing to A's task gets an error frame 404, like a missing task,
    and no event of A's."""
    theirs, unknown = world.running_task["id"], str(uuid.uuid4())
    for ticket in (await world.b.ws_ticket(), None):
        async with world.b.live(ticket=ticket) as ws:
            errors = []
            for task_id in (theirs, unknown):
                await ws.send(json.dumps({"type": "subscribe", "task_id": task_id}))
                async with asyncio.timeout(15):
                    frame = json.loads(await ws.recv())
                assert frame["type"] == "error", frame
                assert (frame["status"], frame["task_id"]) == (404, task_id)
                errors.append(frame["title"])
            assert errors[0] == errors[1]
            await ws.send(json.dumps({"type": "ping"}))
            async with asyncio.timeout(15):
                assert json.loads(await ws.recv()) == {"type": "pong"}  # nothing of A's came
    assert (await world.a.task(theirs))["status"] == "running"
