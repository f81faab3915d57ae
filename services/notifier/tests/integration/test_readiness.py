"""The notifier's /readyz across a Redis outage (a TcpProxy in front of the real Redis): degraded
while Redis is away, ready again by itself; the process and its streams stay up meanwhile."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from pydantic import SecretStr

from relay_devkit.testing import TcpProxy, eventually

from .conftest import Harness

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


async def _readiness(http: httpx.AsyncClient) -> dict[str, Any]:
    body: dict[str, Any] = (await http.get("/readyz")).json()
    return body


async def test_readyz_reports_redis_going_away_and_coming_back(
    harness: Harness, redis_url: str
) -> None:
    parts = urlsplit(redis_url)
    async with TcpProxy(f"{parts.hostname}:{parts.port or 6379}") as proxy:
        redis_through_proxy = SecretStr(proxy.url_for(redis_url))
        async with (
            harness.replica(
                redis_url=redis_through_proxy, readiness_timeout_seconds=1.0
            ) as replica,
            httpx.AsyncClient(base_url=replica.url, timeout=10) as http,
        ):
            ready = await _readiness(http)
            assert ready["status"] == "ready"
            assert set(ready["checks"]) == {"database", "redis", "aws"}

            await proxy.stop()
            degraded = await eventually(
                lambda: _readiness(http), until=lambda r: r["status"] == "degraded"
            )
            assert not degraded["checks"]["redis"]["ok"]
            assert degraded["checks"]["database"]["ok"]
            assert (await http.get("/healthz")).status_code == 200

            await proxy.start()
            await eventually(
                lambda: _readiness(http), until=lambda r: r["status"] == "ready", within=30
            )
