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
    FakeChannel,
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


def _subscribed(text: str) -> str:
    """The notifier's answer to a subscribe frame."""
    return json.dumps({"type": "subscribed", "task_id": json.loads(text)["task_id"]})


def _event(task_id: str, seq: int) -> dict[str, object]:
    return {"type": "task.progressed", "seq": seq, "task_id": task_id, "data": {}}


def _follow(ws: WebSocketTestSession, services: FakeInternalServices, task_id: str) -> FakeChannel:
    """Subscribe ``ws`` to the task, answering for the notifier; the channel it rides on."""
    sent = sum(len(c.sent) for c in services.channels)
    ws.send_json({"type": "subscribe", "task_id": task_id})
    _soon(lambda: sum(len(c.sent) for c in services.channels) > sent)
    [channel] = [c for c in services.channels if c.sent and task_id in c.sent[-1]]
    channel.frame(_subscribed(channel.sent[-1]))
    assert ws.receive_json() == {"type": "subscribed", "task_id": task_id}
    return channel


def test_a_ticket_opens_one_connection(client: TestClient, services: FakeInternalServices) -> None:
    ticket = _ticket(client)
    with client.websocket_connect(f"/v1/ws?ticket={ticket}") as ws:
        channel = _follow(ws, services, TASK)
        assert channel.tenant_id == "acme"
        ws.close()
    assert _closed_with(client, f"/v1/ws?ticket={ticket}") == 4401
    assert len(services.channels) == 1


def test_when_the_notifier_cannot_be_reached_a_subscription_is_refused_503(
    client: TestClient, services: FakeInternalServices
) -> None:
    services.unreachable.add("notifier")
    with client.websocket_connect("/v1/ws", headers={"Authorization": f"Bearer {ACME_KEY}"}) as ws:
        ws.send_json({"type": "subscribe", "task_id": TASK})
        refused = ws.receive_json()
        assert (refused["type"], refused["status"], refused["task_id"]) == ("error", 503, TASK)
        ws.send_json({"type": "ping"})
        assert ws.receive_json() == {"type": "pong"}  # the connection stays usable


# --- /v1/ws: subscriptions ----------------------------------------------------------------------


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
    channel = _follow(ws, services, TASK)
    assert [json.loads(text) for text in channel.sent] == [{"type": "subscribe", "task_id": TASK}]
    asked = [c for c in services.calls if c.service == "tasks"]
    assert [(c.path, c.tenant_id) for c in asked] == [
        (f"/internal/tasks/{OTHER_TASK}", "acme"),
        (f"/internal/tasks/{TASK}", "acme"),
    ]


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("{bad", "Unreadable frame: frame: Invalid JSON"),
        ('{"type": "subscribe", "task_id": "x"}', "Unreadable frame: subscribe.task_id"),
        ('{"type": "dance"}', "Unreadable frame: frame: Input tag 'dance'"),
        ('{"type": "subscribe", "task_id": "*", "after": 3}', "`*` has no history"),
    ],
)
def test_frames_it_cannot_take_get_400_and_nothing_reaches_the_notifier(
    live: WebSocketTestSession, services: FakeInternalServices, text: str, detail: str
) -> None:
    live.send_text(text)
    refused = live.receive_json()
    assert (refused["type"], refused["status"]) == ("error", 400)
    assert refused["detail"].startswith(detail), refused
    live.send_json({"type": "ping"})
    assert live.receive_json() == {"type": "pong"}
    assert services.channels == []
    assert not [c for c in services.calls if c.service == "tasks"]


def test_notifier_frames_reach_the_client_and_the_connections_end_closes_it_with_1012(
    live: WebSocketTestSession, services: FakeInternalServices
) -> None:
    channel = _follow(live, services, TASK)
    channel.frame(json.dumps(_event(TASK, 1)))
    assert live.receive_json() == _event(TASK, 1)
    channel.end()
    with pytest.raises(WebSocketDisconnect) as closed:
        live.receive_text()
    assert closed.value.code == 1012
    _soon(lambda: channel.closed)


def test_a_notifier_that_finds_the_gateway_too_slow_makes_it_close_the_client_with_1013(
    live: WebSocketTestSession, services: FakeInternalServices
) -> None:
    channel = _follow(live, services, TASK)
    channel.end(code=1013)
    with pytest.raises(WebSocketDisconnect) as closed:
        live.receive_text()
    assert closed.value.code == 1013


def test_clients_following_one_task_share_one_notifier_subscription(
    client: TestClient, services: FakeInternalServices
) -> None:
    headers = {"Authorization": f"Bearer {ACME_KEY}"}
    with (
        client.websocket_connect("/v1/ws", headers=headers) as first,
        client.websocket_connect("/v1/ws", headers=headers) as second,
    ):
        channel = _follow(first, services, TASK)
        channel.frame(json.dumps(_event(TASK, 1)))
        assert first.receive_json() == _event(TASK, 1)
        second.send_json({"type": "subscribe", "task_id": TASK, "after": 1})
        assert second.receive_json() == {"type": "subscribed", "task_id": TASK}
        channel.frame(json.dumps(_event(TASK, 2)))
        assert first.receive_json() == _event(TASK, 2)
        assert second.receive_json() == _event(TASK, 2)
        assert [json.loads(text)["type"] for text in channel.sent] == ["subscribe"]
        assert len(services.channels) == 1
        # the first leaving keeps the subscription for the second
        first.send_json({"type": "unsubscribe", "task_id": TASK})
        assert first.receive_json() == {"type": "unsubscribed", "task_id": TASK}
        channel.frame(json.dumps({"type": "end", "task_id": TASK}))
        assert second.receive_json() == {"type": "end", "task_id": TASK}
    assert [json.loads(text)["type"] for text in channel.sent] == ["subscribe"]


def test_star_leaves_out_a_task_the_client_follows_and_what_it_has_sent(
    live: WebSocketTestSession, services: FakeInternalServices
) -> None:
    star = _follow(live, services, "*")
    task = _follow(live, services, TASK)
    assert star is not task  # `*` rides a connection of its own
    other = str(uuid.uuid4())
    star.frame(json.dumps(_event(TASK, 1)))  # the task's own subscription sends it
    task.frame(json.dumps(_event(TASK, 1)))
    star.frame(json.dumps(_event(other, 1)))
    got = [live.receive_json() for _ in range(2)]  # two connections: either may come first
    assert sorted(got, key=lambda e: e["task_id"] == other) == [_event(TASK, 1), _event(other, 1)]
    live.send_json({"type": "unsubscribe", "task_id": TASK})
    assert live.receive_json() == {"type": "unsubscribed", "task_id": TASK}
    star.frame(json.dumps(_event(TASK, 1)))  # sent already
    star.frame(json.dumps(_event(TASK, 2)))
    assert live.receive_json() == _event(TASK, 2)


def test_a_second_subscription_to_a_task_conflicts_and_past_the_cap_is_refused(
    live: WebSocketTestSession, services: FakeInternalServices
) -> None:
    _follow(live, services, TASK)
    live.send_json({"type": "subscribe", "task_id": TASK})
    conflict = live.receive_json()
    assert (conflict["type"], conflict["status"], conflict["task_id"]) == ("error", 409, TASK)
    live.send_json({"type": "unsubscribe", "task_id": "*"})  # not subscribed: still answered
    assert live.receive_json() == {"type": "unsubscribed", "task_id": "*"}


def test_a_client_that_leaves_closes_the_notifier_connection(
    client: TestClient, services: FakeInternalServices
) -> None:
    headers = {"Authorization": f"Bearer {ACME_KEY}"}
    with client.websocket_connect("/v1/ws", headers=headers) as ws:
        channel = _follow(ws, services, TASK)
    _soon(lambda: channel.closed)


def test_the_openapi_document_tells_browsers_about_tickets(app: FastAPI) -> None:
    document = app.openapi()
    ticket = document["paths"]["/v1/ws-tickets"]["post"]
    assert "201" in ticket["responses"]
    events = document["paths"]["/v1/tasks/{task_id}/events"]["get"]
    assert "ticket" in [p["name"] for p in events["parameters"]]
