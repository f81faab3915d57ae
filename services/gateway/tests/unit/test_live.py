"""Live connections through the gateway, on the fakes: tickets, who may open ``/v1/ws`` and
``?ticket=`` streams, and the relay to the notifier (a fake channel here; tests/e2e runs the
real one)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient, WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from gateway.app import create_app
from gateway.settings import GatewaySettings
from relay_devkit.testing import ready_client
from relay_shared.composition import given
from relay_shared.internal_auth import generate_keypair

from .fakes import (
    ACME_KEY,
    GLOBEX_KEY,
    FakeInternalServices,
    Fakes,
    FakeStream,
    FakeTickets,
    json_reply,
    task_document,
)

pytestmark = pytest.mark.timeout(30)

TASK = str(uuid.uuid4())
OTHER_TASK = str(uuid.uuid4())  # tasks knows no such task of acme's
SSE = [b'id: 1\nevent: task.submitted\ndata: {"seq": 1}\n\n']


@pytest.fixture(autouse=True)
def acme_task(services: FakeInternalServices) -> None:
    services.answer("tasks", "GET", f"/internal/tasks/{TASK}", json_reply(200, task_document(TASK)))
    services.stream_from("notifier", f"/internal/tasks/{TASK}/events", FakeStream(SSE))


@pytest.fixture
def tickets(fakes: Fakes) -> FakeTickets:
    return fakes.tickets


@pytest.fixture
def client(fakes: Fakes) -> Iterator[TestClient]:
    """The gateway on the fakes, over a synchronous test client (it speaks WebSocket)."""
    settings = GatewaySettings(
        internal_auth_private_key=generate_keypair()[0], ws_ticket_ttl_seconds=20
    )
    with ready_client(create_app(settings, ports=given(fakes.ports()))) as client:
        yield client


def _ticket(client: TestClient, key: str = ACME_KEY) -> str:
    response = client.post("/v1/ws-tickets", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 201
    ticket: str = response.json()["ticket"]
    return ticket


def _soon(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Until ``condition`` holds: the app handles frames in its own thread."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def _closed_with(client: TestClient, url: str, **options: object) -> int:
    with (
        client.websocket_connect(url, **options) as ws,  # type: ignore[arg-type]
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_text()
    return closed.value.code


# --- tickets ------------------------------------------------------------------------------------


def test_a_ticket_is_issued_to_the_keys_tenant_for_the_configured_time(
    client: TestClient, tickets: FakeTickets
) -> None:
    response = client.post("/v1/ws-tickets", headers={"Authorization": f"Bearer {ACME_KEY}"})
    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"ticket", "expires_in"}
    assert body["expires_in"] == 20 == tickets.ttl_seconds
    assert tickets.tenants == {body["ticket"]: "acme"}
    assert body["ticket"].startswith("rlt_")


def test_a_ticket_needs_the_api_key(client: TestClient, tickets: FakeTickets) -> None:
    assert client.post("/v1/ws-tickets").status_code == 401
    ticket = _ticket(client)
    # a ticket is not a key: it cannot get another ticket (or do anything but follow)
    response = client.post("/v1/ws-tickets", headers={"Authorization": f"Bearer {ticket}"})
    assert response.status_code == 401
    assert client.get("/v1/tasks", params={"ticket": ticket}).status_code == 401
    assert list(tickets.tenants) == [ticket]  # still unused


def test_without_the_ticket_store_tickets_answer_503(
    client: TestClient, tickets: FakeTickets
) -> None:
    tickets.available = False
    response = client.post("/v1/ws-tickets", headers={"Authorization": f"Bearer {ACME_KEY}"})
    assert response.status_code == 503
    assert response.headers["retry-after"]
    events = client.get(f"/v1/tasks/{TASK}/events", params={"ticket": "rlt_" + "a" * 43})
    assert events.status_code == 503


# --- SSE with ?ticket= --------------------------------------------------------------------------


def test_an_event_stream_opens_with_a_ticket_once(
    client: TestClient, services: FakeInternalServices
) -> None:
    ticket = _ticket(client)
    response = client.get(f"/v1/tasks/{TASK}/events", params={"ticket": ticket})
    assert response.status_code == 200
    assert response.content == b"".join(SSE)
    assert {c.tenant_id for c in services.calls} == {"acme"}
    again = client.get(f"/v1/tasks/{TASK}/events", params={"ticket": ticket})
    assert again.status_code == 401
    assert "ticket" in again.json()["detail"]


def test_a_ticket_acts_as_its_tenant(client: TestClient, services: FakeInternalServices) -> None:
    ticket = _ticket(client, GLOBEX_KEY)
    client.get(f"/v1/tasks/{TASK}/events", params={"ticket": ticket})
    # tasks and the notifier are asked as globex, so they answer for globex's tasks only (the
    # fakes answer by path; tests/e2e shows the 404 for another tenant's task)
    assert [(c.service, c.tenant_id) for c in services.calls] == [
        ("tasks", "globex"),
        ("notifier", "globex"),
    ]


@pytest.mark.parametrize("ticket", ["", "rlt_short", "rly_" + "a" * 43, "rlt_" + "a" * 43])
def test_unknown_or_malformed_tickets_are_refused(client: TestClient, ticket: str) -> None:
    response = client.get(f"/v1/tasks/{TASK}/events", params={"ticket": ticket})
    assert response.status_code == 401


# --- /v1/ws: who may open it --------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer rly_unknown"}, {"Authorization": f"Basic {ACME_KEY}"}],
)
def test_without_a_key_or_ticket_the_connection_closes_4401(
    client: TestClient, services: FakeInternalServices, headers: dict[str, str]
) -> None:
    assert _closed_with(client, "/v1/ws", headers=headers) == 4401
    assert services.channels == []  # nothing reached the notifier


def test_a_ticket_opens_one_connection(client: TestClient, services: FakeInternalServices) -> None:
    ticket = _ticket(client)
    with client.websocket_connect(f"/v1/ws?ticket={ticket}") as ws:
        ws.send_json({"type": "ping"})
        _soon(lambda: bool(services.channels and services.channels[0].sent))
        assert json.loads(services.channels[0].sent[0]) == {"type": "ping"}
        assert services.channels[0].tenant_id == "acme"
        ws.close()
    assert _closed_with(client, f"/v1/ws?ticket={ticket}") == 4401
    assert len(services.channels) == 1


def test_when_the_notifier_cannot_be_reached_the_client_is_told_to_retry(
    client: TestClient, services: FakeInternalServices
) -> None:
    services.unreachable.add("notifier")
    headers = {"Authorization": f"Bearer {ACME_KEY}"}
    assert _closed_with(client, "/v1/ws", headers=headers) == 1013


# --- /v1/ws: the relay --------------------------------------------------------------------------


@pytest.fixture
def live(client: TestClient) -> Iterator[WebSocketTestSession]:
    headers = {"Authorization": f"Bearer {ACME_KEY}"}
    with client.websocket_connect("/v1/ws", headers=headers) as ws:
        yield ws


def test_a_subscription_to_a_task_that_is_not_the_tenants_never_reaches_the_notifier(
    live: WebSocketTestSession, services: FakeInternalServices
) -> None:
    ws = live
    ws.send_json({"type": "subscribe", "task_id": OTHER_TASK})
    frame = ws.receive_json()
    assert frame == {
        "type": "error",
        "task_id": OTHER_TASK,
        "status": 404,
        "title": "Not Found",
        "detail": f"No task {OTHER_TASK}.",
    }
    ws.send_json({"type": "subscribe", "task_id": TASK})
    ws.send_json({"type": "ping"})
    channel = services.channels[0]
    _soon(lambda: len(channel.sent) == 2)
    assert json.loads(channel.sent[0]) == {"type": "subscribe", "task_id": TASK}
    assert all(OTHER_TASK not in sent for sent in channel.sent)
    asked = [c for c in services.calls if c.service == "tasks"]
    assert [(c.path, c.tenant_id) for c in asked] == [
        (f"/internal/tasks/{OTHER_TASK}", "acme"),
        (f"/internal/tasks/{TASK}", "acme"),
    ]


def test_frames_it_cannot_read_go_to_the_notifier_to_answer(
    live: WebSocketTestSession, services: FakeInternalServices
) -> None:
    ws = live
    for text in ["{bad", '{"type": "subscribe", "task_id": "x"}', '{"type": "dance"}']:
        ws.send_text(text)
    ws.send_json({"type": "ping"})
    _soon(lambda: len(services.channels[0].sent) == 4)
    assert services.channels[0].sent[:3] == [
        "{bad",
        '{"type": "subscribe", "task_id": "x"}',
        '{"type": "dance"}',
    ]
    assert not [c for c in services.calls if c.service == "tasks"]


def test_notifier_frames_reach_the_client_and_its_end_closes_with_1012(
    client: TestClient, services: FakeInternalServices
) -> None:
    headers = {"Authorization": f"Bearer {ACME_KEY}"}
    with client.websocket_connect("/v1/ws", headers=headers) as ws:
        _soon(lambda: bool(services.channels))
        channel = services.channels[0]
        channel.frame('{"type": "pong"}')
        channel.frame('{"type": "task.submitted", "seq": 1}')
        assert ws.receive_json() == {"type": "pong"}
        assert ws.receive_json() == {"type": "task.submitted", "seq": 1}
        channel.end()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert closed.value.code == 1012
    _soon(lambda: channel.closed)


def test_a_notifier_that_finds_the_gateway_too_slow_makes_it_close_the_client_with_1013(
    client: TestClient, services: FakeInternalServices
) -> None:
    headers = {"Authorization": f"Bearer {ACME_KEY}"}
    with client.websocket_connect("/v1/ws", headers=headers) as ws:
        _soon(lambda: bool(services.channels))
        services.channels[0].end(code=1013)
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert closed.value.code == 1013


def test_a_client_that_leaves_closes_the_notifier_connection(
    client: TestClient, services: FakeInternalServices
) -> None:
    headers = {"Authorization": f"Bearer {ACME_KEY}"}
    with client.websocket_connect("/v1/ws", headers=headers) as ws:
        ws.send_json({"type": "ping"})
        _soon(lambda: bool(services.channels))
        channel = services.channels[0]
    _soon(lambda: channel.closed)


def test_the_openapi_document_tells_browsers_about_tickets(app: FastAPI) -> None:
    document = app.openapi()
    ticket = document["paths"]["/v1/ws-tickets"]["post"]
    assert "201" in ticket["responses"]
    events = document["paths"]["/v1/tasks/{task_id}/events"]["get"]
    assert "ticket" in [p["name"] for p in events["parameters"]]
