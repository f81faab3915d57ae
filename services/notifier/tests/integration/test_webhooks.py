"""Webhooks on real PostgreSQL, delivered over real HTTP to local receivers: the whole path from
an appended event to a verified request, retries, slow and hostile receivers, the SSRF guard,
the claim's bounds and leases, and replay by time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from cryptography.fernet import Fernet
from standardwebhooks import Webhook

from notifier.repository import PostgresWebhookStore
from notifier.signing import SecretBox, new_secret
from notifier.webhook_records import ClaimBounds, EndpointRecord
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


async def test_an_append_wakes_the_worker_for_the_endpoints_that_take_its_event(
    harness: Harness, task_events: Callable
) -> None:
    """The append queues a delivery per endpoint whose filter takes the event, and the count it
    returns wakes the delivery worker: nothing waits for the worker's next poll."""
    slow_poll = FAST | {"webhooks_poll_interval_seconds": 60.0}
    async with serve_receiver() as hooks, harness.replica(**slow_poll) as replica:
        await _create(replica, harness, f"{hooks.url}/ok/all")
        await _create(replica, harness, f"{hooks.url}/ok/done", event_types=["task.succeeded"])
        submitted = task_events().run(steps=1)[0]
        await replica.dispatch(submitted)

        async def arrived() -> None:
            assert len(hooks.at("/ok/all")) == 1

        await settled(arrived, within=5)
        assert hooks.at("/ok/done") == []
        assert await harness.rows("SELECT type FROM webhook_deliveries") == [("task.submitted",)]


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
        assert sorted(d["attempts"] for d in log) == [0] * 48 + [1] * 2  # 2 in flight
        hooks.release.set()  # the hang ends: its deliveries go through

        async def drained() -> None:
            log = await _log(replica, harness, hang["id"])
            assert {d["status"] for d in log} == {"succeeded"}

        await settled(drained, within=20)


async def test_one_tenants_dead_endpoints_leave_room_for_other_tenants(
    harness: Harness, task_events: Callable
) -> None:
    # Without the tenant bound, acme's four hanging endpoints (2 attempts each) would take all 8.
    settings = FAST | {
        "webhooks_timeout_seconds": 60.0,
        "webhooks_concurrency": 8,
        "webhooks_endpoint_concurrency": 2,
        "webhooks_tenant_concurrency": 4,
    }
    async with harness.replica(**settings) as replica, serve_receiver() as hooks:
        for n in range(4):
            await _create(replica, harness, f"{hooks.url}/hang/{n}")
        for event in task_events("acme").run(steps=1):
            await replica.dispatch(event)
        await hooks.settled("/hang", 4)
        await _create(replica, harness, f"{hooks.url}/ok/globex", tenant="globex")
        for event in task_events("globex").run(steps=1):
            await replica.dispatch(event)
        await hooks.settled("/ok/globex", 5, within=20)
        assert len(hooks.at("/hang")) == 4  # acme never held more than its four


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
            # None until the first attempt: an assertion, so that settled() waits for it
            assert (log[0]["last_error"] or "").startswith("refused: ")

        await settled(refused, within=10)
        assert hooks.received == []


def _sealed() -> str:
    return SecretBox([KEY]).seal(new_secret())


async def _database(harness: Harness) -> Database:
    database = Database(harness.database_url, harness.schema, max_size=2)
    await database.open()
    return database


async def _endpoint(store: PostgresWebhookStore, tenant: str, url: str) -> UUID:
    endpoint_id = uuid4()
    await store.add_endpoint(
        EndpointRecord(
            id=endpoint_id,
            tenant_id=tenant,
            url=url,
            event_types=("*",),
            description="",
            created_at=datetime.now(UTC),
            sealed_secret="x",
        ),
        max_per_tenant=10,
    )
    return endpoint_id


async def test_claims_respect_the_endpoint_and_tenant_bounds_and_leases_expire(
    harness: Harness, task_events: Callable
) -> None:
    # a replica with webhooks off: it migrates and queues, but sends nothing
    async with harness.replica(webhooks_encryption_keys=None) as replica:
        database = await _database(harness)
        try:
            store = PostgresWebhookStore(database)
            a = await _endpoint(store, "acme", "https://a.example/")
            b = await _endpoint(store, "acme", "https://b.example/")
            c = await _endpoint(store, "globex", "https://c.example/")
            for tenant in ("acme", "globex"):
                for event in task_events(tenant).run(steps=2):  # 6 events each
                    await replica.dispatch(event)
            assert await store.backlog() == 18  # acme: 2 endpoints x 6; globex: 1 x 6

            def ids(claimed: list[Any]) -> list[UUID]:
                return sorted(d.endpoint_id for d in claimed)

            bounds = ClaimBounds(limit=100, per_endpoint=4, per_tenant=6)
            claimed = await store.claim_due(bounds, lease_seconds=1)
            # 4 per endpoint, but acme's two endpoints share acme's 6; globex is not held back
            assert sorted(ids(claimed).count(e) for e in (a, b)) in ([2, 4], [3, 3])
            assert ids(claimed).count(c) == 4
            # what is in flight counts: acme is full, c has room for 0 more of 4
            more = await store.claim_due(
                replace(
                    bounds,
                    endpoints_in_flight={c: 4},
                    tenants_in_flight={"acme": 6, "globex": 4},
                ),
                lease_seconds=1,
            )
            assert more == []
            assert all(d.attempts == 0 for d in claimed)
            assert await store.backlog() == 8  # the unclaimed: acme 6, globex 2
            # a worker that dies mid-attempt records nothing: after the lease they are due again,
            # with the lost attempt counted
            await asyncio.sleep(1.2)
            again = await store.claim_due(
                ClaimBounds(limit=100, per_endpoint=10, per_tenant=20), lease_seconds=30
            )
            assert len(again) == 18
            retried = [d for d in again if d.id in {c.id for c in claimed}]
            assert len(retried) == len(claimed)
            assert {d.attempts for d in retried} == {1}
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
