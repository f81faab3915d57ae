"""Per-tenant rate limits and quotas through the real stack: a tenant whose limit an operator
lowered with `relay admin set-limits` gets 429s with the RateLimit fields when it bursts past it;
a tenant at its active-task quota is refused until a task ends, and one past its daily spend
(counted from the agent's usage) until the next UTC day; another tenant is unaffected."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.settings import GatewaySettings
from relay_devkit.api_client import PublicApi
from relay_ops.stack.process import RunningStack

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def throttled(stack: RunningStack) -> AsyncIterator[PublicApi]:
    """A tenant of its own whose request rate is 1/s with bursts to 3, set before it ever
    calls (so no gateway has its defaults cached)."""
    tenant = f"burst-{uuid.uuid4().hex[:6]}"
    key = stack.create_key(tenant)
    stack.admin(
        "set-limits",
        "--tenant",
        tenant,
        "--requests-per-second",
        "1",
        "--requests-burst",
        "3",
    )
    shown = stack.admin("show-limits", "--tenant", tenant)
    assert "requests_burst\t3\toverride" in shown
    client = PublicApi(stack.gateway_url, key)
    yield client
    await client.aclose()


async def test_a_burst_past_a_lowered_limit_gets_429_and_another_tenant_does_not(
    throttled: PublicApi, other_api: PublicApi
) -> None:
    answers = await asyncio.gather(*(throttled.http.get("/v1/tasks") for _ in range(12)))

    ok = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 429]
    assert len(ok) + len(refused) == len(answers), [a.status_code for a in answers]
    assert 1 <= len(ok) < len(answers)  # the burst of 3, plus what refilled meanwhile
    for answer in ok:
        assert answer.headers["RateLimit-Policy"] == '"requests";q=3;w=3'
    _check_refusal(refused[0])

    theirs = await other_api.http.get("/v1/tasks")
    assert theirs.status_code == 200
    assert theirs.headers["RateLimit-Policy"] == '"requests";q=100;w=2'  # the defaults


def _check_refusal(answer: httpx.Response) -> None:
    assert answer.headers["content-type"] == "application/problem+json"
    assert int(answer.headers["Retry-After"]) >= 1
    assert answer.headers["RateLimit-Policy"] == '"requests";q=3;w=3'
    assert answer.headers["RateLimit"].startswith('"requests";r=0;t=')
    problem = answer.json()
    assert problem["status"] == 429
    assert problem["limit"] == "requests"
    assert problem["title"] == "Request rate limit exceeded"
    assert problem["detail"]
    assert problem["type"]


@pytest.fixture
async def quota_bound(stack: RunningStack) -> AsyncIterator[PublicApi]:
    """A tenant of its own with one active task at a time and $0.0001 a day."""
    tenant = f"quota-{uuid.uuid4().hex[:6]}"
    key = stack.create_key(tenant)
    stack.admin(
        "set-limits", "--tenant", tenant, "--active-tasks", "1", "--daily-spend-usd", "0.0001"
    )
    client = PublicApi(stack.gateway_url, key)
    yield client
    await client.aclose()


async def test_the_active_task_and_daily_spend_quotas_refuse_submits_with_429(
    quota_bound: PublicApi, other_api: PublicApi
) -> None:
    first = await quota_bound.submit("/steps 1\n/sleep 1")

    busy = await quota_bound.http.post("/v1/tasks", json={"prompt": "second"})
    assert busy.status_code == 429, busy.text
    assert busy.json()["limit"] == "active_tasks"
    assert int(busy.headers["Retry-After"]) >= 1
    assert busy.headers["content-type"] == "application/problem+json"
    await other_api.submit("/steps 1")  # the default quota of another tenant: room to spare

    done = await quota_bound.finished_task(first["id"], within=60)
    assert done["status"] == "succeeded"
    assert done["usage"]["cost_usd"] > 0.0001  # the scripted model's usage, priced

    spent = await quota_bound.http.post("/v1/tasks", json={"prompt": "third"})
    assert spent.status_code == 429, spent.text
    assert spent.json()["limit"] == "daily_spend"
    assert 1 <= int(spent.headers["Retry-After"]) <= 24 * 3600
    listed = (await quota_bound.http.get("/v1/tasks")).json()["items"]
    assert [task["id"] for task in listed] == [first["id"]]  # nothing stored for a refusal


async def test_a_revoked_key_is_refused_within_the_key_cache_seconds(stack: RunningStack) -> None:
    """Each gateway process remembers a key for RELAY_API_KEY_CACHE_SECONDS (the stack runs the
    default): that is the documented bound on revocation."""
    bound = GatewaySettings.model_fields["api_key_cache_seconds"].default
    revoked = stack.create_key(f"revoke-{uuid.uuid4().hex[:6]}")
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers={"Authorization": f"Bearer {revoked}"}
    ) as client:
        assert (await client.get("/v1/tasks")).status_code == 200
        stack.admin("revoke-key", "--prefix", revoked[:12])
        revoked_at = time.monotonic()
        while (refused := await client.get("/v1/tasks")).status_code == 200:
            assert time.monotonic() - revoked_at < bound + 2, "still accepted past the bound"
            await asyncio.sleep(0.2)
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
