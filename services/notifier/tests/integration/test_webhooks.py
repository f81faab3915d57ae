"""Webhooks on real PostgreSQL, delivered over real HTTP to local receivers: the whole path from
an appended event to a verified request, retries, slow and hostile receivers, the SSRF guard,
the claim's bounds and leases, and replay by time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest
from cryptography.fernet import Fernet
from standardwebhooks import Webhook

from notifier.repository import PostgresWebhookStore
from notifier.signing import SecretBox, new_secret
from notifier.webhook_records import EndpointRecord
from relay_devkit.receiver import serve_receiver
from relay_shared.db import Database

from .conftest import Harness, Replica

pytestmark = pytest.mark.integration

KEY = Fernet.generate_key().decode()
FAST = {
    "webhooks_encryption_keys": KEY,
    "webhooks_allow_private": True,
    "webhooks_retry_delays": (0.2, 0.4),
    "webhooks_poll_interval_seconds": 0.2,
    "webhooks_timeout_seconds": 1.0,
}


async def settled(check: Callable[[], Any], *, within: float) -> None:
    """Until ``check()`` stops failing its assertions (the last failure at the deadline)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            await check()
            return
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.05)


async def _create(
    replica: Replica, harness: Harness, url: str, tenant: str = "acme", **body: Any
) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=replica.url) as http:
        response = await http.post(
            "/internal/webhooks", json={"url": url, **body}, headers=harness.headers(tenant)
        )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _log(replica: Replica, harness: Harness, endpoint_id: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=replica.url) as http:
        response = await http.get(
            f"/internal/webhooks/{endpoint_id}/deliveries", headers=harness.headers()
        )
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_appended_events_reach_a_receiver_signed_and_are_logged(
    harness: Harness, task_events: Callable
) -> None:
    async with serve_receiver() as hooks, harness.replica(**FAST) as replica:
        created = await _create(replica, harness, f"{hooks.url}/ok")
        t = task_events()
        for event in t.run(steps=2):
            await replica.dispatch(event)

        async def all_delivered() -> None:
            assert len(hooks.at("/ok")) == 6

        await settled(all_delivered, within=10)
        payloads = [Webhook(created["secret"]).verify(r.body, r.headers) for r in hooks.at("/ok")]
        assert sorted(p["seq"] for p in payloads) == [1, 2, 3, 4, 5, 6]
        assert {p["task_id"] for p in payloads} == {str(t.task_id)}
        assert all("traceparent" not in r.headers for r in hooks.at("/ok"))  # our traces stay ours
        rows = await harness.rows("SELECT secret FROM webhook_endpoints")
        assert created["secret"] not in rows[0][0]  # encrypted at rest

        async def logged() -> None:
            log = await _log(replica, harness, created["id"])
            assert {(d["status"], d["last_status_code"]) for d in log} == {("succeeded", 204)}

        await settled(logged, within=5)


async def test_a_failed_attempt_is_retried_with_the_same_webhook_id(
    harness: Harness, task_events: Callable
) -> None:
    async with serve_receiver() as hooks, harness.replica(**FAST) as replica:
        created = await _create(
            replica, harness, f"{hooks.url}/fail-then-ok", event_types=["task.submitted"]
        )
        await replica.dispatch(task_events().submitted())

        async def retried() -> None:
            [delivery] = await _log(replica, harness, created["id"])
            assert (delivery["status"], delivery["attempts"]) == ("succeeded", 2)

        await settled(retried, within=10)
        ids = {r.headers["webhook-id"] for r in hooks.at("/fail-then-ok")}
        assert len(hooks.at("/fail-then-ok")) == 2
        assert len(ids) == 1


async def test_a_hanging_endpoint_does_not_slow_the_others(
    harness: Harness, task_events: Callable
) -> None:
    # The hanging endpoint's attempts outlast the whole test unless it is released: so every
    # healthy delivery that arrives, arrives while the hanging one holds its slots.
    settings = FAST | {"webhooks_timeout_seconds": 60.0, "webhooks_endpoint_concurrency": 2}
    async with harness.replica(**settings) as replica, serve_receiver() as hooks:
        hang = await _create(replica, harness, f"{hooks.url}/hang")
        await _create(replica, harness, f"{hooks.url}/ok")
        for _ in range(10):
            for event in task_events().run(steps=1):
                await replica.dispatch(event)

        async def healthy_served() -> None:
            assert len(hooks.at("/ok")) == 50

        await settled(healthy_served, within=20)
        # the hanging endpoint got its two slots' worth and no more, and is still holding them
        assert len(hooks.at("/hang")) == 2
        log = await _log(replica, harness, hang["id"])
        assert len(log) == 50
        assert {d["attempts"] for d in log} == {0}
        hooks.release.set()  # the hang ends: its deliveries go through

        async def drained() -> None:
            log = await _log(replica, harness, hang["id"])
            assert {d["status"] for d in log} == {"succeeded"}

        await settled(drained, within=20)


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        ("redirect", 307, "redirects are not followed"),
        ("huge", 200, None),
        ("trickle", None, "no answer within 1s"),
        ("gone", 410, None),
    ],
)
async def test_hostile_receivers_are_cut_off(
    harness: Harness,
    task_events: Callable,
    path: str,
    status: int | None,
    error: str | None,
) -> None:
    async with serve_receiver() as hooks, harness.replica(**FAST) as replica:
        created = await _create(
            replica, harness, f"{hooks.url}/{path}", event_types=["task.submitted"]
        )
        await replica.dispatch(task_events().submitted())

        async def attempted() -> None:
            log = await _log(replica, harness, created["id"])
            assert log
            assert log[0]["attempts"] >= 1
            assert (log[0]["last_status_code"], log[0]["last_error"]) == (status, error)

        await settled(attempted, within=10)
        assert hooks.at("/ok") == []  # the redirect was never followed
        if path == "gone":
            async with httpx.AsyncClient(base_url=replica.url) as http:
                shown = await http.get(
                    f"/internal/webhooks/{created['id']}", headers=harness.headers()
                )
            assert shown.json()["enabled"] is False
            assert "410" in shown.json()["disabled_reason"]


async def test_private_targets_are_refused_when_not_allowed(
    harness: Harness, task_events: Callable
) -> None:
    strict = FAST | {"webhooks_allow_private": False}
    async with serve_receiver() as hooks, harness.replica(**strict) as replica:
        async with httpx.AsyncClient(base_url=replica.url) as http:
            for url in (
                f"{hooks.url}/ok",  # 127.0.0.1
                hooks.url.replace("127.0.0.1", "localhost") + "/ok",
                "http://169.254.169.254/latest/meta-data/",
                "http://[::1]/x",
                "http://10.1.2.3/x",
                "http://0.0.0.0/x",
            ):
                response = await http.post(
                    "/internal/webhooks", json={"url": url}, headers=harness.headers()
                )
                assert response.status_code == 422, (url, response.text)
                assert response.json()["errors"][0]["location"] == "body.url"
        assert await harness.rows("SELECT id FROM webhook_endpoints") == []

        # A name that resolved to a public address when saved and to a private one now (DNS
        # rebinding) is checked again on every attempt: saved here as if it had passed.
        store = PostgresWebhookStore(await _database(harness))
        endpoint_id = uuid4()
        await store.add_endpoint(
            EndpointRecord(
                id=endpoint_id,
                tenant_id="acme",
                url=f"{hooks.url}/ok",
                event_types=("*",),
                description="",
                created_at=datetime.now(UTC),
                sealed_secret=_sealed(),
            ),
            max_per_tenant=10,
        )
        await replica.dispatch(task_events().submitted())

        async def refused() -> None:
            log = await _log(replica, harness, str(endpoint_id))
            assert log
            assert log[0]["last_error"].startswith("refused: ")

        await settled(refused, within=10)
        assert hooks.received == []


def _sealed() -> str:
    return SecretBox([KEY]).seal(new_secret())


async def _database(harness: Harness) -> Database:
    database = Database(harness.database_url, harness.schema, max_size=2)
    await database.open()
    return database


async def test_claims_respect_the_per_endpoint_bound_and_leases_expire(
    harness: Harness, task_events: Callable
) -> None:
    # a replica with webhooks off: it migrates and queues, but sends nothing
    async with harness.replica(webhooks_encryption_keys=None) as replica:
        database = await _database(harness)
        try:
            store = PostgresWebhookStore(database)
            ids = []
            for url in ("https://a.example/", "https://b.example/"):
                endpoint_id = uuid4()
                ids.append(endpoint_id)
                await store.add_endpoint(
                    EndpointRecord(
                        id=endpoint_id,
                        tenant_id="acme",
                        url=url,
                        event_types=("*",),
                        description="",
                        created_at=datetime.now(UTC),
                        sealed_secret="x",
                    ),
                    max_per_tenant=10,
                )
            for event in task_events().run(steps=2):  # 6 events -> 12 deliveries
                await replica.dispatch(event)
            assert await store.backlog() == 12
            claimed = await store.claim_due(limit=100, per_endpoint=4, busy=[], lease_seconds=1)
            assert sorted(str(c.endpoint_id) for c in claimed) == sorted(
                [str(ids[0])] * 4 + [str(ids[1])] * 4
            )
            others = await store.claim_due(
                limit=100, per_endpoint=4, busy=[ids[0]], lease_seconds=1
            )
            assert {c.endpoint_id for c in others} == {ids[1]}
            assert len(others) == 2  # b's rest; the claimed are leased, not due
            assert await store.backlog() == 2  # a's two unclaimed
            # a worker that dies mid-attempt records nothing: after the lease they are due again
            await asyncio.sleep(1.2)
            again = await store.claim_due(limit=100, per_endpoint=10, busy=[], lease_seconds=30)
            assert len(again) == 12
            assert {c.id for c in claimed} <= {c.id for c in again}
        finally:
            await database.close()


async def test_replay_since_a_time_queues_the_tenants_events_the_filter_takes(
    harness: Harness, task_events: Callable
) -> None:
    async with serve_receiver() as hooks, harness.replica(**FAST) as replica:
        before = datetime.now(UTC) - timedelta(seconds=1)
        for tenant in ("acme", "acme", "globex"):
            for event in task_events(tenant).run(steps=1):
                await replica.dispatch(event)
        created = await _create(replica, harness, f"{hooks.url}/ok", event_types=["task.succeeded"])
        async with httpx.AsyncClient(base_url=replica.url) as http:
            replay = await http.post(
                f"/internal/webhooks/{created['id']}/replay",
                json={"since": before.isoformat()},
                headers=harness.headers(),
            )
        assert replay.status_code == 202
        assert replay.json() == {"queued": 2}  # acme's two terminal events, not globex's

        async def delivered() -> None:
            assert len(hooks.at("/ok")) == 2

        await settled(delivered, within=10)
        bodies = [r.json() for r in hooks.at("/ok")]
        assert {b["type"] for b in bodies} == {"task.succeeded"}
