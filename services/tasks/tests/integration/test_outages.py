"""The tasks service through a PostgreSQL outage (a TcpProxy cut in front of the real server):
it stays up, says so on /healthz and /readyz, answers its routes with 503 problems, and works
again by itself when PostgreSQL is back; nothing committed before is lost."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from pydantic import SecretStr

from relay_devkit.testing import TcpProxy, eventually, serve_app
from tasks.app import create_app
from tasks.settings import TasksSettings

from .conftest import Headers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


async def _readiness(http: httpx.AsyncClient) -> dict[str, Any]:
    body: dict[str, Any] = (await http.get("/readyz")).json()
    return body


async def test_the_service_rides_out_a_postgres_outage(
    settings: TasksSettings, database_url: str, tenant: str, auth: Headers
) -> None:
    parts = urlsplit(database_url)
    async with TcpProxy(f"{parts.hostname}:{parts.port or 5432}") as proxy:
        app = create_app(
            settings.model_copy(
                update={
                    "database_url": SecretStr(proxy.url_for(database_url)),
                    "db_acquire_timeout": 1.0,
                    "readiness_timeout_seconds": 1.0,
                }
            )
        )
        async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
            created = await http.post(
                "/internal/tasks", json={"prompt": "hi"}, headers=auth(tenant)
            )
            assert created.status_code == 202
            task_id = created.json()["id"]
            assert (await _readiness(http))["status"] == "ready"

            await proxy.stop()
            body = await eventually(
                lambda: _readiness(http), until=lambda r: r["status"] == "degraded"
            )
            assert not body["checks"]["database"]["ok"]
            assert (await http.get("/healthz")).status_code == 200
            during = await http.get(f"/internal/tasks/{task_id}", headers=auth(tenant))
            assert during.status_code == 503
            assert during.headers["content-type"] == "application/problem+json"
            assert during.headers["retry-after"] == "2"

            await proxy.start()
            await eventually(
                lambda: _readiness(http), until=lambda r: r["status"] == "ready", within=30
            )
            after = await http.get(f"/internal/tasks/{task_id}", headers=auth(tenant))
            assert (after.status_code, after.json()["id"]) == (200, task_id)
