"""The whole gateway, built by its composition root on real PostgreSQL, in front of a stand-in
for the internal services on a real socket."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from typer.testing import CliRunner

from gateway.admin import app as admin
from gateway.app import create_app
from gateway.settings import GatewaySettings
from relay_devkit.testing import serve_app, wait_ready
from relay_ops.stack.moto import free_port
from relay_shared.internal_auth import TokenVerifier

from ..unit.fakes import FakeUpstream  # noqa: TID252 -- the gateway's fakes have one home

pytestmark = pytest.mark.integration


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[FakeUpstream, str]]:
    fake = FakeUpstream()
    async with serve_app(fake.app()) as url:
        yield fake, url


@pytest.fixture
def settings(
    database_url: str,
    db_schema: str,
    internal_keys: tuple[str, str],
    upstream: tuple[FakeUpstream, str],
) -> GatewaySettings:
    _, url = upstream
    return GatewaySettings(
        database_url=database_url,
        db_schema=db_schema,
        internal_auth_private_key=internal_keys[0],
        tasks_url=url,
        artifacts_url=url,
        notifier_url=url,
    )


@pytest.fixture
async def gateway(settings: GatewaySettings) -> AsyncIterator[FastAPI]:
    app = create_app(settings)
    async with LifespanManager(app):
        await wait_ready(app)
        yield app


@pytest.fixture
async def acme_key(
    gateway: FastAPI, database_url: str, db_schema: str
) -> str:  # after the gateway: the CLI meets the schema the service migrated
    env = {
        "DATABASE_URL": database_url,
        "RELAY_DATABASE_URL": database_url,
        "RELAY_DB_SCHEMA": db_schema,
    }
    result = await asyncio.to_thread(
        CliRunner().invoke, admin, ["create-key", "--tenant", "acme"], env=env
    )
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip()


def _client(app: FastAPI, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://gateway",
        headers={"Authorization": f"Bearer {key}"},
    )


async def test_a_request_with_a_created_key_reaches_tasks_signed_for_the_tenant(
    gateway: FastAPI,
    acme_key: str,
    upstream: tuple[FakeUpstream, str],
    internal_keys: tuple[str, str],
) -> None:
    fake, _ = upstream
    body = b'{"prompt": "Write a haiku."}'
    async with _client(gateway, acme_key) as client:
        response = await client.post(
            "/v1/tasks",
            content=body,
            headers={"Content-Type": "application/json", "Idempotency-Key": "k-1"},
        )

    assert response.status_code == 202
    assert response.headers["location"] == "/v1/tasks/t-1"
    [received] = fake.received
    assert received.body == body
    assert received.headers["idempotency-key"] == "k-1"
    scheme, _, token = received.authorization.partition(" ")
    assert scheme == "Bearer"
    caller = TokenVerifier(internal_keys[1], audience="tasks").verify(token)
    assert (caller.service, caller.tenant_id) == ("gateway", "acme")


async def test_a_cancel_reaches_tasks_signed_for_the_tenant_and_its_409_comes_back(
    gateway: FastAPI,
    acme_key: str,
    upstream: tuple[FakeUpstream, str],
    internal_keys: tuple[str, str],
) -> None:
    fake, _ = upstream
    task_id = uuid.uuid4()
    async with _client(gateway, acme_key) as client:
        first = await client.post(f"/v1/tasks/{task_id}/cancel", json={"reason": "not needed"})
        second = await client.post(f"/v1/tasks/{task_id}/cancel")

    assert (first.status_code, first.json()["status"]) == (202, "cancelling")
    assert second.status_code == 409
    assert second.headers["content-type"] == "application/problem+json"
    assert second.json()["task_status"] == "cancelled"
    with_reason, without = fake.received
    assert (with_reason.method, with_reason.path) == ("POST", f"/internal/tasks/{task_id}/cancel")
    assert with_reason.body == b'{"reason":"not needed"}'
    assert without.body == b""
    token = with_reason.authorization.partition(" ")[2]
    assert TokenVerifier(internal_keys[1], audience="tasks").verify(token).tenant_id == "acme"


async def test_a_key_the_database_does_not_know_is_401(
    gateway: FastAPI, acme_key: str, upstream: tuple[FakeUpstream, str]
) -> None:
    fake, _ = upstream
    forged = acme_key[:-2] + ("AA" if not acme_key.endswith("AA") else "BB")
    async with _client(gateway, forged) as client:
        response = await client.get("/v1/tasks")

    assert response.status_code == 401
    assert fake.received == []


async def test_events_stream_through_as_they_happen_and_the_upstream_closes_when_the_client_goes(
    settings: GatewaySettings,
    acme_key: str,
    upstream: tuple[FakeUpstream, str],
    internal_keys: tuple[str, str],
) -> None:
    fake, _ = upstream
    task_id = uuid.uuid4()
    async with (
        serve_app(create_app(settings)) as gateway_url,
        httpx.AsyncClient(base_url=gateway_url, timeout=10) as client,
    ):
        async with client.stream(
            "GET",
            f"/v1/tasks/{task_id}/events",
            headers={"Authorization": f"Bearer {acme_key}", "Last-Event-ID": "0"},
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.aiter_lines()
            # the first event arrives while the upstream is still holding back the second
            assert await anext(lines) == "id: 1"
            fake.release_second_event.set()
            seen = [await anext(lines) for _ in range(4)]
            assert seen[-1] == "id: 2"
        # the client hung up: the gateway lets go of the notifier's stream
        await asyncio.wait_for(fake.stream_closed.wait(), timeout=10)

    check, events = fake.received
    assert check.path == f"/internal/tasks/{task_id}"
    assert events.headers["last-event-id"] == "0"
    token = events.authorization.partition(" ")[2]
    assert TokenVerifier(internal_keys[1], audience="notifier").verify(token).tenant_id == "acme"


async def test_a_service_that_is_not_running_is_503(
    database_url: str, db_schema: str, internal_keys: tuple[str, str], acme_key: str
) -> None:
    settings = GatewaySettings(
        database_url=database_url,
        db_schema=db_schema,
        internal_auth_private_key=internal_keys[0],
        tasks_url=f"http://127.0.0.1:{free_port()}",
    )
    app = create_app(settings)
    async with LifespanManager(app), _client(app, acme_key) as client:
        await wait_ready(app)
        response = await client.get("/v1/tasks")

    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "127.0.0.1" not in response.text
