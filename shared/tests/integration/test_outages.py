"""Dependencies that go away and come back, cut with a TcpProxy in front of the real PostgreSQL
or moto server: start-up waits, /readyz follows the outage, the outbox relay catches up."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from botocore.exceptions import EndpointConnectionError
from fastapi import FastAPI

from relay_devkit.testing import TcpProxy, eventually, serve_app, wait_ready
from relay_ops.stack.topology import Topology
from relay_shared.aws import aws_client
from relay_shared.db import Database
from relay_shared.events import TaskSubmitted, TaskSubmittedData
from relay_shared.http import create_service_app
from relay_shared.migrations import KIT_OUTBOX, apply_migrations
from relay_shared.outbox import Outbox, OutboxRelay, pending_count
from relay_shared.publisher import EventBridgePublisher
from relay_shared.runtime import ServiceRuntime
from relay_shared.settings import ServiceSettings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _port_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5432}"


def _service(database_url: str, db_schema: str) -> FastAPI:
    """A service whose only dependency is PostgreSQL, with one route that uses it."""
    settings = ServiceSettings(
        service_name="tasks",
        database_url=database_url,
        db_schema=db_schema,
        db_acquire_timeout=1.0,
        startup_max_backoff_seconds=0.5,
        readiness_timeout_seconds=1.0,
    )

    @asynccontextmanager
    async def start(app: FastAPI, runtime: ServiceRuntime) -> AsyncIterator[None]:
        app.state.database = await runtime.database(KIT_OUTBOX)
        yield

    app = create_service_app(settings, start=start)

    @app.get("/count")
    async def count() -> dict[str, int]:
        async with app.state.database.transaction() as conn:
            return {"pending": await pending_count(conn)}

    return app


async def _readiness(http: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    response = await http.get("/readyz")
    return response.status_code, response.json()


async def test_readiness_follows_postgres_from_start_up_through_an_outage_and_back(
    database_url: str, db_schema: str
) -> None:
    # Not started yet: its port is closed, as if PostgreSQL were down when the service starts.
    proxy = TcpProxy(_port_of(database_url))
    app = _service(proxy.url_for(database_url), db_schema)
    try:
        async with serve_app(app, ready=False) as url, httpx.AsyncClient(base_url=url) as http:
            assert (await http.get("/healthz")).status_code == 200
            status, body = await _readiness(http)
            assert (status, body["status"]) == (503, "starting")
            assert "waiting for PostgreSQL" in body["checks"]["startup"]["detail"]
            early = await http.get("/count")
            assert early.status_code == 503
            assert early.headers["content-type"] == "application/problem+json"
            assert "Retry-After" in early.headers
            assert early.json()["detail"].startswith("Service starting: waiting for PostgreSQL")

            await proxy.start()  # PostgreSQL is back: start-up finishes by itself
            await wait_ready(app)
            status, body = await _readiness(http)
            assert (status, body["status"]) == (200, "ready")
            assert body["checks"]["database"]["ok"]
            assert (await http.get("/count")).json() == {"pending": 0}

            await proxy.stop()  # PostgreSQL goes away under a running service
            status, body = await eventually(
                lambda: _readiness(http), until=lambda r: r[1]["status"] == "degraded"
            )
            assert status == 503
            assert not body["checks"]["database"]["ok"]
            assert (await http.get("/healthz")).status_code == 200
            during = await http.get("/count")
            assert (during.status_code, during.headers["retry-after"]) == (503, "2")
            assert during.json()["detail"] == (
                "The database is unavailable right now; try again shortly."
            )

            await proxy.start()
            await eventually(
                lambda: _readiness(http), until=lambda r: r[1]["status"] == "ready", within=30
            )
            assert (await http.get("/count")).status_code == 200
    finally:
        await proxy.stop()


def _submitted() -> TaskSubmitted:
    return TaskSubmitted.create(
        TaskSubmittedData(prompt="p", model="m"), tenant_id="acme", task_id=uuid.uuid4()
    )


class CountingEvents:
    """The events client, counting PutEvents calls (to see the relay is not busy-looping)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls = 0

    async def put_events(self, **request: Any) -> Any:
        self.calls += 1
        return await self._client.put_events(**request)


async def test_the_relay_publishes_what_was_committed_during_an_aws_outage_once_it_ends(
    database_url: str, db_schema: str, topology: Topology, moto_endpoint: str
) -> None:
    apply_migrations(database_url, db_schema, KIT_OUTBOX)
    db = Database(database_url, db_schema)
    await db.open()
    proxy = TcpProxy(_port_of(moto_endpoint))
    await proxy.start()
    settings = ServiceSettings(
        service_name="tasks", env=topology.env, aws_endpoint_url=proxy.url_for(moto_endpoint)
    )
    before, during = [_submitted() for _ in range(3)], [_submitted() for _ in range(12)]
    try:
        async with aws_client(settings, "events") as events:
            counting = CountingEvents(events)
            relay = OutboxRelay(
                db,
                EventBridgePublisher(counting, settings.event_bus_name, max_attempts=1),
                schema=db_schema,
                poll_interval=0.2,
                max_outage_delay=1.0,
            )
            await proxy.stop()  # the AWS endpoint goes away
            async with db.transaction() as conn:
                await Outbox().add(conn, *before)
            running = asyncio.create_task(relay.run())
            try:
                await eventually(_async(lambda: relay.outage is not None))
                async with db.transaction() as conn:
                    await Outbox().add(conn, *during)
                await asyncio.sleep(3)  # an outage of a few seconds, to count the retries in
                async with db.transaction() as conn:
                    assert await pending_count(conn) == len(before) + len(during)
                # backing off, not spinning: a handful of tries, each one PutEvents call
                assert 2 <= counting.calls <= 15

                await proxy.start()  # back
                await eventually(_pending(db), until=lambda n: n == 0, within=20)
            finally:
                relay.stop()
                await running
        assert relay.outage is None
        received = await _drain(settings, topology.queue_urls["agent"], len(before + during))
        assert received == {str(e.metadata.event_id) for e in before + during}
    finally:
        await proxy.stop()
        await db.close()


class UnreachableEvents:
    """An EventBridge endpoint that refuses every connection, at once (no client retries)."""

    def __init__(self) -> None:
        self.calls = 0

    async def put_events(self, **_: Any) -> Any:
        self.calls += 1
        raise EndpointConnectionError(endpoint_url="http://events.invalid")


async def test_while_eventbridge_is_unreachable_the_relay_backs_off_and_keeps_rows_in_order(
    database_url: str, db_schema: str
) -> None:
    apply_migrations(database_url, db_schema, KIT_OUTBOX)
    db = Database(database_url, db_schema)
    await db.open()
    events = [_submitted() for _ in range(3)]
    unreachable = UnreachableEvents()
    relay = OutboxRelay(
        db,
        EventBridgePublisher(unreachable, "relay-test", max_attempts=1),
        schema=db_schema,
        poll_interval=0.2,
        max_outage_delay=1.0,
    )
    try:
        async with db.transaction() as conn:
            await Outbox().add(conn, *events)
        running = asyncio.create_task(relay.run())
        await asyncio.sleep(3)
        relay.stop()
        await running  # it kept running through the outage, and stops when asked
        # doubling waits (0.2 s, 0.4 s, ... up to 1 s, jittered): a handful of calls in 3 s,
        # not one per poll interval and never a spin
        assert 3 <= unreachable.calls <= 9
        async with db.transaction() as conn:
            cur = await conn.execute("SELECT attempts, next_attempt_at <= now() AS due FROM outbox")
            rows = await cur.fetchall()
        assert rows == [{"attempts": 0, "due": True}] * 3  # no per-row penalty: order is kept
    finally:
        await db.close()


def _pending(db: Database) -> Any:
    async def count() -> int:
        async with db.transaction() as conn:
            return await pending_count(conn)

    return count


def _async(condition: Any) -> Any:
    async def check() -> bool:
        return bool(condition())

    return check


async def _drain(settings: ServiceSettings, queue_url: str, expected: int) -> set[str]:
    """Event ids delivered to a queue."""
    seen: set[str] = set()
    async with aws_client(settings, "sqs") as sqs:

        async def receive() -> set[str]:
            got = await sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            )
            for message in got.get("Messages", []):
                seen.add(json.loads(message["Body"])["detail"]["metadata"]["event_id"])
                await sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            return seen

        await eventually(receive, until=lambda ids: len(ids) >= expected, within=30)
    return seen
