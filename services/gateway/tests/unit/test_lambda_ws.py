"""The WebSocket API's Lambda handler on the fakes: the authorizer accepts what /v1/ws accepts,
the routes hand connects, disconnects and frames to the notifier for the authorized tenant, and
a subscribe to a task the tenant does not own goes with its refusal.
(tests/e2e/test_gateway_lambda_ws.py runs it against the whole stack and moto.)

Sync tests: the handler runs its own event loop, as in a Lambda execution environment."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from gateway.app import create_app
from gateway.lambda_ws import LambdaLive, Unauthorized
from gateway.rate_limits import REQUESTS
from gateway.settings import GatewaySettings
from relay_devkit.apigateway import websocket_authorizer_event, websocket_event
from relay_shared.composition import given
from relay_shared.internal_auth import generate_keypair

from .fakes import ACME_KEY, Fakes, json_reply, task_document

OURS = str(uuid.uuid4())
THEIRS = str(uuid.uuid4())


@pytest.fixture
def live(fakes: Fakes) -> Iterator[LambdaLive]:
    def make_app() -> FastAPI:
        settings = GatewaySettings(internal_auth_private_key=generate_keypair()[0])
        return create_app(settings, ports=given(fakes.ports()))

    handler = LambdaLive(make_app, ready_timeout=10)
    yield handler
    handler._app.close()
    asyncio.set_event_loop(None)


def _authorize(live: LambdaLive, **credentials: Any) -> dict[str, Any]:
    answer: dict[str, Any] = live(websocket_authorizer_event(**credentials), None)
    return answer


def test_the_authorizer_refuses_without_a_valid_key_or_ticket(live: LambdaLive) -> None:
    for credentials in (
        {},
        {"headers": {"Authorization": "Bearer rk_not_a_key"}},
        {"headers": {"Authorization": f"Basic {ACME_KEY}"}},
        {"params": {"ticket": "made-up"}},
    ):
        with pytest.raises(Unauthorized):
            _authorize(live, **credentials)


def test_the_authorizer_allows_a_key_or_a_ticket_once(live: LambdaLive, fakes: Fakes) -> None:
    allowed = _authorize(live, headers={"authorization": f"Bearer {ACME_KEY}"})
    assert allowed["principalId"] == "acme"
    assert allowed["context"] == {"tenant_id": "acme"}
    [statement] = allowed["policyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Resource"].endswith("/$connect")

    ticket = live._app.run(fakes.tickets.issue("acme", ttl_seconds=30))
    assert _authorize(live, params={"ticket": ticket})["context"] == {"tenant_id": "acme"}
    with pytest.raises(Unauthorized):
        _authorize(live, params={"ticket": ticket})


def test_routes_reach_the_notifier_as_the_authorized_tenant(live: LambdaLive, fakes: Fakes) -> None:
    authorizer = _authorize(live, headers={"Authorization": f"Bearer {ACME_KEY}"})
    services = fakes.services
    base = "/internal/edge/connections/c1"
    for method, path in (("PUT", base), ("DELETE", base), ("POST", f"{base}/frames")):
        services.answer("notifier", method, path, json_reply(204, None))
    services.answer("tasks", "GET", f"/internal/tasks/{OURS}", json_reply(200, task_document(OURS)))

    assert live(websocket_event("$connect", "c1", authorizer=authorizer), None) == {
        "statusCode": 200
    }
    for frame in (
        {"type": "subscribe", "task_id": OURS},
        {"type": "subscribe", "task_id": THEIRS},  # tasks answers 404: not the tenant's
        {"type": "ping"},
    ):
        event = websocket_event("$default", "c1", authorizer=authorizer, body=json.dumps(frame))
        assert live(event, None) == {"statusCode": 200}
    assert live(websocket_event("$disconnect", "c1", authorizer=authorizer), None) == {
        "statusCode": 200
    }

    notifier = [c for c in services.calls if c.service == "notifier"]
    assert [(c.method, c.path) for c in notifier] == [
        ("PUT", base),
        ("POST", f"{base}/frames"),
        ("POST", f"{base}/frames"),
        ("POST", f"{base}/frames"),
        ("DELETE", base),
    ]
    assert {c.tenant_id for c in notifier} == {"acme"}
    bodies = [json.loads(c.body or b"") for c in notifier if c.body]
    assert bodies[0] == {
        "text": json.dumps({"type": "subscribe", "task_id": OURS}),
        "refusal": None,
    }
    assert bodies[1]["refusal"]["status"] == 404
    assert bodies[2]["refusal"] is None


def test_a_route_without_an_authorized_tenant_is_refused(live: LambdaLive, fakes: Fakes) -> None:
    event = websocket_event("$default", "c1", authorizer={"principalId": "", "context": {}})
    assert live(event, None) == {"statusCode": 401}
    assert fakes.services.calls == []


def test_connect_counts_against_the_request_rate(live: LambdaLive, fakes: Fakes) -> None:
    authorizer = _authorize(live, headers={"Authorization": f"Bearer {ACME_KEY}"})
    fakes.services.answer("notifier", "PUT", "/internal/edge/connections/c1", json_reply(204, None))
    fakes.limiter.tats[("acme", REQUESTS)] = fakes.limiter.now + 3600  # spent for an hour
    answer = live(websocket_event("$connect", "c1", authorizer=authorizer), None)
    assert answer == {"statusCode": 429}
    assert fakes.services.calls == []
