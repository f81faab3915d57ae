"""The webhook routes reach the notifier as the caller's tenant, and its answer comes back; what
the gateway can tell is wrong (auth, body, ids, query) never reaches it."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from gateway.app import create_app
from gateway.settings import GatewaySettings
from gateway.upstream import InternalReply
from relay_devkit.testing import wait_ready
from relay_shared.composition import given
from relay_shared.internal_auth import generate_keypair

from .fakes import ACME_KEY, GLOBEX_KEY, FakeInternalServices, Fakes, json_reply, problem_reply

# fixed, not uuid4(): a test's id must be the same in every pytest-xdist worker's collection
WEBHOOK = "0f4e8d2c-6b1a-4e9d-8c3b-2a7f5e1d9c60"
TASK = "5f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"
EVENT = str(uuid.uuid4())
INTERNAL = f"/internal/webhooks/{WEBHOOK}"
PUBLIC = f"/v1/webhooks/{WEBHOOK}"

ENDPOINT = {
    "id": WEBHOOK,
    "url": "https://example.com/hooks",
    "event_types": ["task.succeeded", "task.failed"],
    "description": "billing",
    "enabled": True,
    "disabled_reason": None,
    "created_at": "2026-01-01T00:00:00Z",
}
SECRET = "whsec_" + "A" * 43
DELIVERY = {
    "id": str(uuid.uuid4()),
    "event_id": EVENT,
    "type": "task.succeeded",
    "task_id": TASK,
    "seq": 4,
    "status": "pending",
    "attempts": 1,
    "last_status_code": 500,
    "last_error": "HTTP 500",
    "next_attempt_at": "2026-01-01T00:01:00Z",
    "created_at": "2026-01-01T00:00:00Z",
}

# (public method, public path, JSON body sent, internal method, internal path, status, answer)
ROUTES: list[tuple[str, str, Any, str, str, int, Any]] = [
    (
        "POST",
        "/v1/webhooks",
        {"url": "https://example.com/hooks"},
        "POST",
        "/internal/webhooks",
        201,
        {**ENDPOINT, "secret": SECRET},
    ),
    ("GET", "/v1/webhooks", None, "GET", "/internal/webhooks", 200, {"items": [ENDPOINT]}),
    ("GET", PUBLIC, None, "GET", INTERNAL, 200, ENDPOINT),
    ("PATCH", PUBLIC, {"enabled": False}, "PATCH", INTERNAL, 200, {**ENDPOINT, "enabled": False}),
    ("DELETE", PUBLIC, None, "DELETE", INTERNAL, 204, None),
    (
        "POST",
        f"{PUBLIC}/rotate-secret",
        None,
        "POST",
        f"{INTERNAL}/rotate-secret",
        200,
        {"secret": SECRET, "previous_secret_expires_at": "2026-01-02T00:00:00Z"},
    ),
    (
        "GET",
        f"{PUBLIC}/deliveries",
        None,
        "GET",
        f"{INTERNAL}/deliveries",
        200,
        {"items": [DELIVERY], "next_cursor": "c2"},
    ),
    (
        "POST",
        f"{PUBLIC}/replay",
        {"task_id": TASK, "after": 3},
        "POST",
        f"{INTERNAL}/replay",
        202,
        {"queued": 2},
    ),
    ("POST", f"{PUBLIC}/test", None, "POST", f"{INTERNAL}/test", 202, {"event_id": EVENT}),
]
ROUTE_IDS = [f"{r[0]} {r[1].replace(WEBHOOK, '{id}')}" for r in ROUTES]

# the routes that read a body, each with a body it takes
BODY_ROUTES = [
    ("POST", "/v1/webhooks", {"url": "https://example.com/hooks"}),
    ("PATCH", PUBLIC, {"description": "new"}),
    ("POST", f"{PUBLIC}/replay", {"since": "2026-01-01T00:00:00Z"}),
]
BODY_ROUTE_IDS = ["create", "patch", "replay"]


def _reply(status: int, answer: Any) -> InternalReply:
    return InternalReply(status, {}) if answer is None else json_reply(status, answer)


async def _send(
    client: httpx.AsyncClient, method: str, path: str, body: Any = None, **kwargs: Any
) -> httpx.Response:
    if body is not None:
        kwargs["json"] = body
    return await client.request(method, path, **kwargs)


@pytest.fixture
async def globex(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {GLOBEX_KEY}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://gateway", headers=headers
    ) as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path", "body", "internal_method", "internal_path", "status", "answer"),
    ROUTES,
    ids=ROUTE_IDS,
)
async def test_each_route_reaches_the_notifier_as_the_caller_and_relays_its_answer(
    acme: httpx.AsyncClient,
    services: FakeInternalServices,
    method: str,
    path: str,
    body: Any,
    internal_method: str,
    internal_path: str,
    status: int,
    answer: Any,
) -> None:
    reply = _reply(status, answer)
    services.answer("notifier", internal_method, internal_path, reply)

    response = await _send(acme, method, path, body)

    assert response.status_code == status
    assert response.content == reply.body
    [call] = services.calls
    assert (call.service, call.method, call.path, call.tenant_id) == (
        "notifier",
        internal_method,
        internal_path,
        "acme",
    )
    if body is None:
        assert call.body is None
        assert "Content-Type" not in call.headers
    else:
        assert json.loads(call.body or b"") == body
        assert call.headers["Content-Type"] == "application/json"


async def test_a_new_endpoint_is_forwarded_byte_for_byte_and_its_secret_is_never_cached(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    created = {**ENDPOINT, "secret": SECRET}
    services.answer(
        "notifier",
        "POST",
        "/internal/webhooks",
        json_reply(201, created, headers={"X-Internal-Node": "notifier-2"}),
    )
    body = b'{"url": "https://example.com/hooks",\n "event_types": ["*"], "description": "x"}'

    response = await acme.post(
        "/v1/webhooks", content=body, headers={"Content-Type": "application/json; charset=utf-8"}
    )

    assert response.status_code == 201
    assert response.json() == created
    assert response.headers["cache-control"] == "no-store"
    assert "x-internal-node" not in response.headers
    [call] = services.calls
    assert call.body == body


async def test_a_rotated_secret_is_never_cached(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    rotated = {"secret": SECRET, "previous_secret_expires_at": "2026-01-02T00:00:00Z"}
    services.answer("notifier", "POST", f"{INTERNAL}/rotate-secret", json_reply(200, rotated))

    response = await acme.post(f"{PUBLIC}/rotate-secret")

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"


async def test_a_removed_endpoint_is_a_204_without_a_body(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    services.answer("notifier", "DELETE", INTERNAL, InternalReply(204, {}))

    response = await acme.delete(PUBLIC)

    assert response.status_code == 204
    assert response.content == b""


async def test_deliveries_forward_only_the_paging_and_status_parameters(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    page = {"items": [DELIVERY], "next_cursor": None}
    services.answer("notifier", "GET", f"{INTERNAL}/deliveries", json_reply(200, page))

    response = await acme.get(
        f"{PUBLIC}/deliveries",
        params={"status": "failed", "limit": "100", "cursor": "c1", "tenant": "globex", "x": "1"},
    )
    bare = await acme.get(f"{PUBLIC}/deliveries")

    assert (response.status_code, bare.status_code) == (200, 200)
    assert response.json() == page
    assert [dict(c.params) for c in services.calls] == [
        {"status": "failed", "limit": "100", "cursor": "c1"},
        {},
    ]
    assert {c.tenant_id for c in services.calls} == {"acme"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("limit", "0"),
        ("limit", "101"),
        ("limit", "ten"),
        ("status", "lost"),
        ("cursor", "c" * 201),
    ],
)
async def test_a_delivery_query_out_of_range_is_422_and_reaches_no_service(
    acme: httpx.AsyncClient, services: FakeInternalServices, name: str, value: str
) -> None:
    response = await acme.get(f"{PUBLIC}/deliveries", params={name: value})

    assert response.status_code == 422
    assert [e["location"] for e in response.json()["errors"]] == [f"query.{name}"]
    assert services.calls == []


@pytest.mark.parametrize(("method", "path", "body"), BODY_ROUTES, ids=BODY_ROUTE_IDS)
async def test_a_body_that_is_not_json_is_400_and_reaches_no_service(
    acme: httpx.AsyncClient, services: FakeInternalServices, method: str, path: str, body: Any
) -> None:
    response = await acme.request(
        method, path, content=b'{"url": ', headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert services.calls == []


@pytest.mark.parametrize(("method", "path", "body"), BODY_ROUTES, ids=BODY_ROUTE_IDS)
async def test_a_body_of_another_media_type_is_415_and_reaches_no_service(
    acme: httpx.AsyncClient, services: FakeInternalServices, method: str, path: str, body: Any
) -> None:
    response = await acme.request(
        method, path, content=json.dumps(body), headers={"Content-Type": "text/plain"}
    )
    no_type = await acme.request(method, path, content=json.dumps(body))

    assert (response.status_code, no_type.status_code) == (415, 415)
    assert services.calls == []


LONG = "x" * 501
REPLAY = f"{PUBLIC}/replay"
SINCE = "2026-01-01T00:00:00Z"


def _new(**fields: Any) -> dict[str, Any]:
    """A new endpoint's body: a good URL, and ``fields``."""
    return {"url": "https://example.com/hooks", **fields}


NOT_TAKEN: list[tuple[str, str, Any, str]] = [
    # (public method, public path, body, where the 422 says the fault is)
    ("POST", "/v1/webhooks", _new(tenant_id="acme"), "body.tenant_id"),
    ("POST", "/v1/webhooks", {"event_types": ["*"]}, "body.url"),
    ("POST", "/v1/webhooks", _new(url="ftp://example.com/hooks"), "body.url"),
    ("POST", "/v1/webhooks", _new(url="javascript:alert(1)"), "body.url"),
    ("POST", "/v1/webhooks", _new(url="https:///no-host"), "body.url"),
    ("POST", "/v1/webhooks", _new(url="https://example.com:http/"), "body.url"),
    ("POST", "/v1/webhooks", _new(url=7), "body.url"),
    ("POST", "/v1/webhooks", _new(event_types=["task.exploded"]), "body.event_types"),
    ("POST", "/v1/webhooks", _new(event_types=[]), "body.event_types"),
    ("POST", "/v1/webhooks", _new(event_types=["*", "task.failed"]), "body.event_types"),
    ("POST", "/v1/webhooks", _new(event_types=["task.failed"] * 11), "body.event_types"),
    ("POST", "/v1/webhooks", _new(event_types="*"), "body.event_types"),
    ("POST", "/v1/webhooks", _new(description=LONG), "body.description"),
    ("PATCH", PUBLIC, {"secret": "whsec_mine"}, "body.secret"),
    ("PATCH", PUBLIC, {"url": "file:///etc/passwd"}, "body.url"),
    ("PATCH", PUBLIC, {"event_types": ["webhook.test"]}, "body.event_types"),
    ("PATCH", PUBLIC, {"description": LONG}, "body.description"),
    ("PATCH", PUBLIC, {"enabled": "maybe"}, "body.enabled"),
    ("POST", REPLAY, {}, "body"),
    ("POST", REPLAY, {"task_id": TASK, "since": SINCE}, "body"),
    ("POST", REPLAY, {"since": SINCE, "after": 2}, "body"),
    ("POST", REPLAY, {"since": "2026-01-01T00:00:00"}, "body.since"),
    ("POST", REPLAY, {"task_id": "not-a-uuid"}, "body.task_id"),
    ("POST", REPLAY, {"task_id": TASK, "after": -1}, "body.after"),
    ("POST", REPLAY, {"task_id": TASK, "tenant_id": "globex"}, "body.tenant_id"),
]


@pytest.mark.parametrize(("method", "path", "body", "location"), NOT_TAKEN)
async def test_a_body_that_does_not_fit_is_422_naming_the_field_and_reaches_no_service(
    acme: httpx.AsyncClient,
    services: FakeInternalServices,
    method: str,
    path: str,
    body: Any,
    location: str,
) -> None:
    response = await acme.request(method, path, json=body)

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert location in {e["location"] for e in response.json()["errors"]}
    assert services.calls == []


async def test_a_url_over_2048_characters_is_422_and_reaches_no_service(
    fakes: Fakes, services: FakeInternalServices
) -> None:
    # over the unit tests' body limit: an app with the default one (65536 bytes)
    settings = GatewaySettings(internal_auth_private_key=generate_keypair()[0])
    app = create_app(settings, ports=given(fakes.ports()))
    longest = "https://example.com/" + "a" * (2048 - len("https://example.com/"))
    services.answer("notifier", "POST", "/internal/webhooks", json_reply(201, ENDPOINT))
    async with LifespanManager(app):
        await wait_ready(app)
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {ACME_KEY}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gateway", headers=headers
        ) as client:
            too_long = await client.post("/v1/webhooks", json=_new(url=longest + "a"))
            at_most = await client.post("/v1/webhooks", json=_new(url=longest))

    assert too_long.status_code == 422
    assert [e["location"] for e in too_long.json()["errors"]] == ["body.url"]
    assert at_most.status_code == 201
    assert len(services.calls) == 1


async def test_what_is_wrong_with_a_url_or_event_type_is_said(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    scheme = await acme.post("/v1/webhooks", json={"url": "ftp://example.com/hooks"})
    event = await acme.post("/v1/webhooks", json=_new(event_types=["task.exploded"]))

    assert "scheme must be https or http" in scheme.json()["errors"][0]["message"]
    message = event.json()["errors"][0]["message"]
    assert "task.exploded" in message
    assert "task.succeeded" in message  # and what would do
    assert services.calls == []


@pytest.mark.parametrize(
    "body",
    [
        {"url": "http://example.com/hooks"},
        {"url": "HTTPS://example.com:8443/hooks?x=1", "event_types": ["*"], "description": ""},
        _new(event_types=["artifact.published", "task.cancelled"]),
    ],
)
async def test_a_body_that_fits_is_forwarded(
    acme: httpx.AsyncClient, services: FakeInternalServices, body: dict[str, Any]
) -> None:
    await acme.post("/v1/webhooks", json=body)

    [call] = services.calls
    assert json.loads(call.body or b"") == body


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("POST", "/rotate-secret"),
        ("GET", "/deliveries"),
        ("POST", "/replay"),
        ("POST", "/test"),
    ],
)
@pytest.mark.parametrize("webhook_id", ["not-a-uuid", "..%2F..%2Finternal%2Ftasks", "1"])
async def test_an_id_that_is_not_a_uuid_is_422_and_reaches_no_service(
    acme: httpx.AsyncClient,
    services: FakeInternalServices,
    method: str,
    suffix: str,
    webhook_id: str,
) -> None:
    body = {"task_id": TASK} if suffix == "/replay" else {}
    response = await acme.request(method, f"/v1/webhooks/{webhook_id}{suffix}", json=body)

    assert response.status_code in ({404, 422} if "%2F" in webhook_id else {422})
    assert services.calls == []


@pytest.mark.parametrize(
    ("method", "path", "body", "internal_method", "internal_path", "status", "answer"),
    ROUTES,
    ids=ROUTE_IDS,
)
async def test_every_route_needs_an_api_key(
    anonymous: httpx.AsyncClient,
    services: FakeInternalServices,
    method: str,
    path: str,
    body: Any,
    internal_method: str,
    internal_path: str,
    status: int,
    answer: Any,
) -> None:
    missing = await _send(anonymous, method, path, body)
    unknown = await _send(
        anonymous, method, path, body, headers={"Authorization": "Bearer rly_notakey"}
    )

    assert (missing.status_code, unknown.status_code) == (401, 401)
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert services.calls == []


async def test_another_tenants_endpoint_is_asked_for_as_the_caller_and_is_the_notifiers_404(
    globex: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    # acme's endpoint; the notifier finds no such endpoint for globex, as for a missing one
    services.answer(
        "notifier", "GET", INTERNAL, problem_reply(404, "Not Found", f"No webhook {WEBHOOK}.")
    )

    response = await globex.get(
        PUBLIC, params={"tenant": "acme", "tenant_id": "acme"}, headers={"X-Tenant-Id": "acme"}
    )

    assert response.status_code == 404
    assert response.json()["detail"] == f"No webhook {WEBHOOK}."
    [call] = services.calls
    assert call.tenant_id == "globex"
    assert dict(call.params) == {}
    assert "X-Tenant-Id" not in call.headers


@pytest.mark.parametrize(
    ("method", "path", "body", "internal_method", "internal_path", "status", "answer"),
    ROUTES,
    ids=ROUTE_IDS,
)
async def test_every_route_carries_the_callers_tenant_never_one_the_client_names(
    acme: httpx.AsyncClient,
    globex: httpx.AsyncClient,
    services: FakeInternalServices,
    method: str,
    path: str,
    body: Any,
    internal_method: str,
    internal_path: str,
    status: int,
    answer: Any,
) -> None:
    services.answer("notifier", internal_method, internal_path, _reply(status, answer))
    spoof = {"params": {"tenant": "acme", "tenant_id": "acme"}, "headers": {"X-Tenant": "acme"}}

    await _send(acme, method, path, body, **spoof)
    await _send(globex, method, path, body, **spoof)

    assert [c.tenant_id for c in services.calls] == ["acme", "globex"]
    assert all(
        "tenant" not in p and "tenant_id" not in p for p in (c.params for c in services.calls)
    )


async def test_a_replay_of_a_task_that_is_not_the_callers_is_the_notifiers_404(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    services.answer(
        "notifier",
        "POST",
        f"{INTERNAL}/replay",
        problem_reply(404, "Not Found", f"No task {TASK}."),
    )

    response = await acme.post(f"{PUBLIC}/replay", json={"task_id": TASK})

    assert response.status_code == 404
    assert response.json()["detail"] == f"No task {TASK}."
    assert services.services_called() == ["notifier"]  # the notifier checks the task itself


@pytest.mark.parametrize(
    ("status", "title"), [(409, "Too many webhook endpoints"), (422, "Invalid request")]
)
async def test_a_refusal_from_the_notifier_reaches_the_client_with_the_public_path(
    acme: httpx.AsyncClient, services: FakeInternalServices, status: int, title: str
) -> None:
    problem = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "instance": "/internal/webhooks",
        "errors": [{"location": "body.url", "message": "resolves to a private address"}],
    }
    services.answer(
        "notifier",
        "POST",
        "/internal/webhooks",
        InternalReply(
            status, {"content-type": "application/problem+json"}, json.dumps(problem).encode()
        ),
    )

    response = await acme.post("/v1/webhooks", json={"url": "https://example.com/hooks"})

    assert response.status_code == status
    assert response.json() == {**problem, "instance": "/v1/webhooks"}
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_notifier_without_webhooks_or_starting_is_a_503_to_retry(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    services.answer(
        "notifier",
        "GET",
        "/internal/webhooks",
        problem_reply(503, "Webhooks not configured", "RELAY_WEBHOOKS_* at notifier-2"),
    )

    response = await acme.get("/v1/webhooks")

    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert "notifier-2" not in response.text  # the inside stays inside


async def test_an_unreachable_notifier_is_a_503(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    services.unreachable.add("notifier")

    response = await acme.post(f"{PUBLIC}/test")

    assert response.status_code == 503
    assert response.headers["retry-after"]


async def test_a_failing_notifier_is_a_502_that_says_nothing_of_the_inside(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    services.answer(
        "notifier", "GET", INTERNAL, problem_reply(500, "Boom", "psycopg error at db-3:5432")
    )

    response = await acme.get(PUBLIC)

    assert response.status_code == 502
    assert "db-3" not in response.text
