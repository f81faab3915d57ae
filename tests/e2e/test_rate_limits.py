"""Per-tenant rate limits through the real stack: a tenant whose limit an operator lowered with
`relay admin set-limits` gets 429s with the RateLimit fields when it bursts past it; another
tenant is unaffected."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

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
