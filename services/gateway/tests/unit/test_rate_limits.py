"""Per-tenant request and submit rates on the fakes (the buckets' clock is the test's): the
RateLimit fields on every answer, 429 past a limit with nothing forwarded, overrides, and
serving on when the limiter is away (fail open)."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from gateway import rate_limits
from gateway.app import create_app
from gateway.rate_limits import LimitOverride, RateLimits, TenantLimits
from gateway.settings import GatewaySettings
from gateway.upstream import InternalReply
from relay_devkit.testing import ready_client, wait_ready
from relay_shared.composition import given
from relay_shared.internal_auth import generate_keypair
from relay_shared.problems import PROBLEM_JSON
from relay_shared.sockets import TRY_AGAIN_LATER

from .fakes import ACME_KEY, GLOBEX_KEY, FakeInternalServices, Fakes, json_reply, task_document

TASK = str(uuid.uuid4())
NEW_TASK = b'{"prompt": "Write a haiku."}'
JSON = {"content-type": "application/json"}

# small buckets, so a test reaches them in a few requests: 3 requests at once, then 1 a second;
# 2 submissions at once, then 1 every 2 seconds
LIMITS = {
    "rate_limit_requests_per_second": 1,
    "rate_limit_requests_burst": 3,
    "rate_limit_submits_per_second": 0.5,
    "rate_limit_submits_burst": 2,
}
REQUESTS_POLICY = '"requests";q=3;w=3'
SUBMITS_POLICY = '"submits";q=2;w=4'


def _settings(**overrides: Any) -> GatewaySettings:
    return GatewaySettings(
        internal_auth_private_key=generate_keypair()[0], **{**LIMITS, **overrides}
    )


@pytest.fixture(autouse=True)
def tasks_answer(services: FakeInternalServices) -> None:
    services.answer("tasks", "GET", f"/internal/tasks/{TASK}", json_reply(200, task_document(TASK)))
    services.answer("tasks", "POST", "/internal/tasks", json_reply(202, task_document(TASK)))


@pytest.fixture
def settings() -> GatewaySettings:
    return _settings()


@pytest.fixture
async def app(fakes: Fakes, settings: GatewaySettings) -> AsyncIterator[FastAPI]:
    app = create_app(settings, ports=given(fakes.ports()))
    async with LifespanManager(app):
        await wait_ready(app)
        yield app


@pytest.fixture
async def globex(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {GLOBEX_KEY}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://gateway", headers=headers
    ) as client:
        yield client


async def _submit(client: httpx.AsyncClient) -> httpx.Response:
    return await client.post("/v1/tasks", content=NEW_TASK, headers=JSON)


# --- the fields on every answer -------------------------------------------------------------


async def test_a_success_carries_the_policy_and_what_is_left(acme: httpx.AsyncClient) -> None:
    response = await acme.get(f"/v1/tasks/{TASK}")

    assert response.status_code == 200
    assert response.headers["RateLimit-Policy"] == REQUESTS_POLICY
    # one of three taken; one token a second: full again in a second
    assert response.headers["RateLimit"] == '"requests";r=2;t=1'


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", f"/v1/tasks/{uuid.uuid4()}", None, 404),  # relayed from tasks
        ("GET", "/v1/tasks/not-a-uuid", None, 422),  # refused by the gateway itself
        ("POST", "/v1/tasks", b"not json", 400),
        ("POST", "/v1/tasks", b"{}", 422),
    ],
    ids=["relayed-404", "path-422", "malformed-400", "body-422"],
)
async def test_an_error_carries_them_too(
    acme: httpx.AsyncClient, method: str, path: str, body: bytes | None, status: int
) -> None:
    response = await acme.request(method, path, content=body, headers=JSON)

    assert response.status_code == status
    assert response.headers["RateLimit-Policy"].startswith(REQUESTS_POLICY)
    assert response.headers["RateLimit"].startswith('"requests";r=2;t=1')


async def test_a_submit_carries_both_policies(acme: httpx.AsyncClient) -> None:
    response = await _submit(acme)

    assert response.status_code == 202
    assert response.headers["RateLimit-Policy"] == f"{REQUESTS_POLICY}, {SUBMITS_POLICY}"
    assert response.headers["RateLimit"] == '"requests";r=2;t=1, "submits";r=1;t=2'


async def test_an_event_stream_carries_them_and_counts_once(
    acme: httpx.AsyncClient, fakes: Fakes
) -> None:
    async with acme.stream("GET", f"/v1/tasks/{TASK}/events") as response:
        # the notifier has no stream for it here: its 404 is relayed, with the fields
        assert response.headers["RateLimit"] == '"requests";r=2;t=1'
    assert len(fakes.limiter.calls) == 1


# --- past a limit -----------------------------------------------------------------------------


async def test_past_the_request_rate_the_answer_is_429_and_nothing_is_forwarded(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    for _ in range(3):
        assert (await acme.get(f"/v1/tasks/{TASK}")).status_code == 200
    forwarded = len(services.calls)

    response = await acme.get(f"/v1/tasks/{TASK}")

    assert response.status_code == 429
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["Retry-After"] == "1"
    assert response.headers["RateLimit-Policy"] == REQUESTS_POLICY
    assert response.headers["RateLimit"] == '"requests";r=0;t=3'
    problem = response.json()
    assert problem["type"] == "about:blank"
    assert problem["status"] == 429
    assert problem["title"] == "Request rate limit exceeded"
    assert problem["limit"] == "requests"
    assert "1 requests per second with bursts to 3" in problem["detail"]
    assert len(services.calls) == forwarded


async def test_the_bucket_refills_with_time(acme: httpx.AsyncClient, fakes: Fakes) -> None:
    for _ in range(3):
        await acme.get(f"/v1/tasks/{TASK}")
    assert (await acme.get(f"/v1/tasks/{TASK}")).status_code == 429

    fakes.limiter.advance(1.0)

    response = await acme.get(f"/v1/tasks/{TASK}")
    assert response.status_code == 200
    assert response.headers["RateLimit"] == '"requests";r=0;t=3'
    assert (await acme.get(f"/v1/tasks/{TASK}")).status_code == 429


@pytest.mark.parametrize(
    "settings", [_settings(rate_limit_requests_burst=10)], ids=["requests-burst-10"]
)
async def test_the_submit_rate_is_its_own_limit(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    assert [(await _submit(acme)).status_code for _ in range(2)] == [202, 202]
    submitted = len(services.calls)

    response = await _submit(acme)

    assert response.status_code == 429
    assert response.json()["limit"] == "submits"
    assert response.json()["title"] == "Submit rate limit exceeded"
    assert response.headers["Retry-After"] == "2"  # one submission every 2 s
    assert response.headers["RateLimit"] == '"requests";r=8;t=2, "submits";r=0;t=4'
    assert len(services.calls) == submitted
    # reading is still fine: the refused submit took nothing from the request rate either
    other = await acme.get(f"/v1/tasks/{TASK}")
    assert other.status_code == 200
    assert other.headers["RateLimit"] == '"requests";r=7;t=3'


async def test_the_request_rate_covers_submissions_too(acme: httpx.AsyncClient) -> None:
    for _ in range(3):
        await acme.get(f"/v1/tasks/{TASK}")

    response = await _submit(acme)

    assert response.status_code == 429
    assert response.json()["limit"] == "requests"


async def test_one_tenant_past_its_limit_leaves_the_other_alone(
    acme: httpx.AsyncClient, globex: httpx.AsyncClient
) -> None:
    for _ in range(4):
        await acme.get(f"/v1/tasks/{TASK}")

    response = await globex.get("/v1/webhooks")

    assert response.status_code != 429
    assert response.headers["RateLimit"] == '"requests";r=2;t=1'


async def test_unauthenticated_requests_count_against_nobody(
    anonymous: httpx.AsyncClient, fakes: Fakes
) -> None:
    for _ in range(5):
        response = await anonymous.get(f"/v1/tasks/{TASK}")
        assert response.status_code == 401
        assert "RateLimit" not in response.headers
    wrong_key = {"Authorization": "Bearer rly_unknown"}
    assert (await anonymous.get("/v1/tasks", headers=wrong_key)).status_code == 401
    assert fakes.limiter.calls == []


# --- overrides -----------------------------------------------------------------------------------


async def test_a_tenants_override_applies_to_it_alone(
    fakes: Fakes, acme: httpx.AsyncClient, globex: httpx.AsyncClient
) -> None:
    fakes.limit_overrides.overrides["acme"] = LimitOverride(
        requests_per_second=0.5, requests_burst=1
    )

    first = await acme.get(f"/v1/tasks/{TASK}")
    second = await acme.get(f"/v1/tasks/{TASK}")
    other = await globex.get("/v1/webhooks")

    assert first.status_code == 200
    assert first.headers["RateLimit-Policy"] == '"requests";q=1;w=2'
    assert second.status_code == 429
    assert second.headers["Retry-After"] == "2"
    assert other.headers["RateLimit-Policy"] == REQUESTS_POLICY


async def test_overrides_are_read_once_per_ttl_not_per_request(
    fakes: Fakes, acme: httpx.AsyncClient
) -> None:
    for _ in range(5):
        await acme.get(f"/v1/tasks/{TASK}")
    assert fakes.limit_overrides.reads == 1


async def test_a_changed_override_is_seen_after_the_ttl(fakes: Fakes) -> None:
    now = [0.0]
    limits = RateLimits(
        fakes.limiter,
        fakes.limit_overrides,
        TenantLimits(50, 100, 10, 50),
        overrides_ttl_seconds=10,
        clock=lambda: now[0],
    )
    assert (await limits.limits_for("acme")).requests_burst == 100
    fakes.limit_overrides.overrides["acme"] = LimitOverride(requests_burst=5, submits_burst=2)

    now[0] = 9.0
    assert (await limits.limits_for("acme")).requests_burst == 100
    now[0] = 10.5
    assert await limits.limits_for("acme") == TenantLimits(50, 5, 10, 2)
    assert fakes.limit_overrides.reads == 2


# --- fail open ---------------------------------------------------------------------------------


class _Counted:
    def __init__(self) -> None:
        self.total = 0

    def add(self, amount: int, attributes: Any = None) -> None:
        self.total += amount


@pytest.fixture
def fail_open_counter(monkeypatch: pytest.MonkeyPatch) -> _Counted:
    counter = _Counted()
    monkeypatch.setattr(rate_limits, "FAIL_OPEN", counter)
    return counter


async def test_without_the_limiter_requests_are_served_and_it_says_so(
    fakes: Fakes,
    acme: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    fail_open_counter: _Counted,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fakes.limiter.available = False

    with caplog.at_level(logging.WARNING, logger="gateway.rate_limits"):
        statuses = [(await acme.get(f"/v1/tasks/{TASK}")).status_code for _ in range(6)]

    assert statuses == [200] * 6  # past the burst of 3, yet served
    assert fail_open_counter.total == 6
    warnings = [r for r in caplog.records if "serving without rate limits" in r.getMessage()]
    assert len(warnings) == 1  # not one line per request
    ready = (await anonymous.get("/readyz")).json()
    assert ready["status"] == "ready"  # degraded limits never take the gateway out
    check = ready["checks"]["rate_limits"]
    assert check["ok"] is False
    assert check["fail_open"] is True
    assert "failing open" in check["detail"]
    assert "redis away" in check["detail"]


async def test_an_answer_served_open_carries_no_fields(
    fakes: Fakes, acme: httpx.AsyncClient, fail_open_counter: _Counted
) -> None:
    fakes.limiter.available = False
    response = await acme.get(f"/v1/tasks/{TASK}")
    assert response.status_code == 200
    assert "RateLimit" not in response.headers
    assert "RateLimit-Policy" not in response.headers


async def test_limits_are_enforced_again_when_the_limiter_is_back(fakes: Fakes) -> None:
    now = [0.0]
    limits = RateLimits(
        fakes.limiter, fakes.limit_overrides, TenantLimits(1, 1, 1, 1), clock=lambda: now[0]
    )
    fakes.limiter.available = False
    assert (await limits.admit("acme")).limits == ()
    (report,) = [await limits.check().probe()]
    assert not report.ok

    fakes.limiter.available = True
    now[0] = 0.5  # left alone for a moment after a failure: no call, still open
    assert (await limits.admit("acme")).limits == ()
    calls = len(fakes.limiter.calls)
    now[0] = rate_limits.RETRY_AFTER_FAILURE_SECONDS + 0.1
    assert (await limits.admit("acme")).problem() is None
    assert len(fakes.limiter.calls) == calls + 1
    assert (await limits.check().probe()).ok


async def test_the_ready_report_says_enforced_normally(anonymous: httpx.AsyncClient) -> None:
    check = (await anonymous.get("/readyz")).json()["checks"]["rate_limits"]
    assert check == {"ok": True, "detail": "enforced", "fail_open": False}


@pytest.mark.parametrize("settings", [_settings(rate_limits_enabled=False)], ids=["disabled"])
async def test_with_limits_disabled_nothing_is_counted(
    acme: httpx.AsyncClient, fakes: Fakes
) -> None:
    statuses = [(await acme.get(f"/v1/tasks/{TASK}")).status_code for _ in range(5)]
    assert statuses == [200] * 5
    assert fakes.limiter.calls == []
    assert fakes.limit_overrides.reads == 0


# --- WebSocket ------------------------------------------------------------------------------------


@pytest.fixture
def ws_client(fakes: Fakes) -> Iterator[TestClient]:
    app = create_app(_settings(), ports=given(fakes.ports()))
    with ready_client(app) as client:
        yield client


@pytest.mark.timeout(30)
def test_a_websocket_counts_once_and_is_refused_past_the_limit(
    ws_client: TestClient, fakes: Fakes
) -> None:
    auth = {"Authorization": f"Bearer {ACME_KEY}"}
    with ws_client.websocket_connect("/v1/ws", headers=auth) as ws:
        ws.send_json({"type": "ping"})
        assert len(fakes.limiter.calls) == 1
    for _ in range(2):
        ws_client.get(f"/v1/tasks/{TASK}", headers=auth)

    with (
        ws_client.websocket_connect("/v1/ws", headers=auth) as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_text()
    assert closed.value.code == TRY_AGAIN_LATER
    assert closed.value.reason == "Request rate limit exceeded"


# --- quotas: sent with each submit, enforced by tasks --------------------------------------------


async def test_a_submit_carries_the_tenants_quotas_to_tasks_and_its_refusal_comes_back(
    fakes: Fakes, acme: httpx.AsyncClient, globex: httpx.AsyncClient
) -> None:
    fakes.limit_overrides.overrides["acme"] = LimitOverride(active_tasks=0, daily_spend_usd=2.5)
    fakes.services.answer(
        "tasks",
        "POST",
        "/internal/tasks",
        InternalReply(
            429,
            {"content-type": "application/problem+json", "retry-after": "3600"},
            json.dumps({"title": "Quota exceeded", "status": 429, "limit": "daily_spend"}).encode(),
        ),
    )

    refused = await acme.post("/v1/tasks", json={"prompt": "x"})
    await globex.post("/v1/tasks", json={"prompt": "x"})

    acme_call, globex_call = fakes.services.calls
    # acme: no active-task quota (0), its own spend quota; globex: the defaults
    assert {k: v for k, v in acme_call.headers.items() if k.startswith("Relay-Quota-")} == {
        "Relay-Quota-Daily-Spend-Usd": "2.5"
    }
    assert {k: v for k, v in globex_call.headers.items() if k.startswith("Relay-Quota-")} == {
        "Relay-Quota-Active-Tasks": "100"
    }
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["limit"] == "daily_spend"
    assert refused.headers["Retry-After"] == "3600"
    assert "RateLimit-Policy" in refused.headers  # the rate limits it passed are still shown
