"""Webhooks through the composition root on the fakes: the endpoint API (with BOLA and bad
input), deliveries queued from the timeline, signing, retries, disabling, rotation, the log,
replay and the test event. The worker is driven by hand (``deliver_due``) against the manual
clock; the HTTP sender is scripted (integration tests use a real receiver)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest
from asgi_lifespan import LifespanManager
from cryptography.fernet import Fernet
from fastapi import FastAPI
from standardwebhooks import Webhook, WebhookVerificationError

from notifier.app import create_app
from notifier.delivery import DeliveryPolicy, decide
from notifier.handlers import HANDLERS
from notifier.models import WEBHOOK_EVENT_TYPES, DeliveryStatus
from notifier.service import Notifier
from notifier.signing import SecretBox
from notifier.webhook_records import AttemptResult, ClaimBounds, ClaimedDelivery
from relay_devkit.testing import Recorded, wait_ready
from relay_shared.composition import given

from .conftest import ISSUER, unit_settings
from .fakes import Fakes

KEY = Fernet.generate_key().decode()
URL = "https://hooks.example.com/relay"
OTHER_URL = "https://other.example.com/relay"
DELAYS = (5.0, 60.0, 600.0)


def _auth(tenant: str = "acme") -> dict[str, str]:
    return ISSUER.headers(audience="notifier", tenant_id=tenant)


def _settings(**overrides: Any) -> Any:
    return unit_settings(
        webhooks_encryption_keys=KEY,
        webhooks_retry_delays=DELAYS,
        webhooks_disable_after_days=1.0,
        **overrides,
    )


async def _client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://notifier"
        ) as http,
    ):
        await wait_ready(app)
        yield http


@pytest.fixture
def fakes() -> Fakes:
    """The manual clock starts at the real now: receivers refuse signatures minutes old."""
    fakes = Fakes()
    fakes.clock.now = datetime.now(UTC)
    return fakes


@pytest.fixture
def app(fakes: Fakes) -> FastAPI:
    return create_app(_settings(), ports=given(fakes.ports()))


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async for http in _client(app):
        yield http


@pytest.fixture
def notifier(app: FastAPI, client: httpx.AsyncClient) -> Notifier:
    service: Notifier = app.state.service
    return service


async def _create(client: httpx.AsyncClient, tenant: str = "acme", **body: Any) -> dict[str, Any]:
    response = await client.post(
        "/internal/webhooks", json={"url": URL, **body}, headers=_auth(tenant)
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _run_task(notifier: Notifier, task_events: Callable, tenant: str = "acme") -> Any:
    t = task_events(tenant)
    for event in t.run(steps=1):
        await notifier.timelines.record(event)
    return t


def _verified(secret: str, sent: Any) -> dict[str, Any]:
    payload: dict[str, Any] = Webhook(secret).verify(sent.body, sent.headers)
    return payload


# --- the endpoint API ---


async def test_an_endpoint_is_created_with_a_secret_shown_once(client: httpx.AsyncClient) -> None:
    created = await _create(client, event_types=["task.succeeded"], description="prod")
    assert created["secret"].startswith("whsec_")
    assert created["event_types"] == ["task.succeeded"]
    assert (created["enabled"], created["disabled_reason"]) == (True, None)
    shown = await client.get(f"/internal/webhooks/{created['id']}", headers=_auth())
    assert shown.status_code == 200
    assert "secret" not in shown.json()
    assert shown.json() == {k: v for k, v in created.items() if k != "secret"}
    listed = (await client.get("/internal/webhooks", headers=_auth())).json()
    assert [e["id"] for e in listed["items"]] == [created["id"]]


async def test_the_secret_is_stored_encrypted(client: httpx.AsyncClient, fakes: Fakes) -> None:
    created = await _create(client)
    stored = next(iter(fakes.webhooks.endpoints_by_id.values()))
    assert created["secret"] not in stored.sealed_secret
    assert SecretBox([KEY]).open(stored.sealed_secret) == created["secret"]


async def test_another_tenants_endpoint_is_404_on_every_route(client: httpx.AsyncClient) -> None:
    created = await _create(client, tenant="acme")
    base = f"/internal/webhooks/{created['id']}"
    calls = [
        ("GET", base, None),
        ("PATCH", base, {"enabled": False}),
        ("DELETE", base, None),
        ("POST", f"{base}/rotate-secret", None),
        ("GET", f"{base}/deliveries", None),
        ("POST", f"{base}/replay", {"since": "2025-01-01T00:00:00Z"}),
        ("POST", f"{base}/test", None),
    ]
    for method, path, body in calls:
        response = await client.request(method, path, json=body, headers=_auth("globex"))
        assert response.status_code == 404, (method, path, response.text)
    assert (await client.get("/internal/webhooks", headers=_auth("globex"))).json() == {"items": []}
    still = await client.get(base, headers=_auth("acme"))
    assert still.json()["enabled"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://hooks.example.com/x"}, "url"),
        ({"url": "file:///etc/passwd"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "https://user:pw@hooks.example.com/"}, "url"),
        ({"url": "https://" + "a" * 2050 + ".com/"}, "url"),
        ({"url": URL, "event_types": ["task.exploded"]}, "event_types"),
        ({"url": URL, "event_types": ["*", "task.failed"]}, "event_types"),
        ({"url": URL, "event_types": []}, "event_types"),
        ({"url": URL, "description": "x" * 501}, "description"),
        ({"url": URL, "secret": "whsec_mine"}, "secret"),
    ],
)
async def test_bad_input_is_a_422_naming_the_field_and_creates_nothing(
    client: httpx.AsyncClient, fakes: Fakes, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/internal/webhooks", json=body, headers=_auth())
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert any(e["location"].endswith(field) for e in response.json()["errors"]), response.json()
    assert fakes.webhooks.endpoints_by_id == {}


@pytest.mark.parametrize("host", ["169.254.169.254", "localhost", "10.0.0.1"])
async def test_unsafe_targets_are_refused_on_create_and_update(
    client: httpx.AsyncClient, fakes: Fakes, host: str
) -> None:
    response = await client.post(
        "/internal/webhooks", json={"url": f"http://{host}/x"}, headers=_auth()
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["location"] == "body.url"
    assert host in response.json()["detail"]
    created = await _create(client)
    patched = await client.patch(
        f"/internal/webhooks/{created['id']}", json={"url": f"http://{host}/"}, headers=_auth()
    )
    assert patched.status_code == 422
    assert fakes.webhooks.endpoints_by_id[next(iter(fakes.webhooks.endpoints_by_id))].url == URL


async def test_a_tenant_has_a_bounded_number_of_endpoints(fakes: Fakes) -> None:
    app = create_app(_settings(webhooks_max_endpoints=2), ports=given(fakes.ports()))
    async for client in _client(app):
        await _create(client)
        await _create(client)
        third = await client.post("/internal/webhooks", json={"url": URL}, headers=_auth())
        assert third.status_code == 409
        await _create(client, tenant="globex")  # another tenant's count is its own


async def test_without_encryption_keys_the_api_says_webhooks_are_unavailable(
    fakes: Fakes,
) -> None:
    app = create_app(unit_settings(), ports=given(fakes.ports()))
    async for client in _client(app):
        response = await client.post("/internal/webhooks", json={"url": URL}, headers=_auth())
        assert response.status_code == 503
        assert "RELAY_WEBHOOKS_ENCRYPTION_KEYS" in response.json()["detail"]


async def test_patch_changes_fields_and_delete_removes(client: httpx.AsyncClient) -> None:
    created = await _create(client)
    base = f"/internal/webhooks/{created['id']}"
    patched = await client.patch(
        base, json={"event_types": ["task.failed"], "description": "x"}, headers=_auth()
    )
    assert patched.status_code == 200
    assert (patched.json()["event_types"], patched.json()["description"]) == (
        ["task.failed"],
        "x",
    )
    assert (await client.delete(base, headers=_auth())).status_code == 204
    assert (await client.get(base, headers=_auth())).status_code == 404
    assert (await client.delete(base, headers=_auth())).status_code == 404


# --- deliveries ---


async def test_appended_events_are_delivered_signed_with_the_event_as_body(
    client: httpx.AsyncClient, notifier: Notifier, fakes: Fakes, task_events: Callable
) -> None:
    created = await _create(client)
    t = await _run_task(notifier, task_events)
    assert await notifier.deliveries.deliver_due() == 5
    events = fakes.store.rows[t.task_id].events
    payloads = [_verified(created["secret"], sent) for sent in fakes.sender.sent]
    assert sorted(p["seq"] for p in payloads) == [1, 2, 3, 4, 5]
    for sent in fakes.sender.sent:
        payload = json.loads(sent.body)
        event = events[payload["seq"] - 1]
        assert sent.body.decode() == event.client_json  # exactly what SSE shows
        assert sent.headers["webhook-id"] == str(event.event_id)
        assert sent.headers["content-type"] == "application/json"
        assert sent.url == URL
    log = (
        await client.get(f"/internal/webhooks/{created['id']}/deliveries", headers=_auth())
    ).json()
    assert {(d["status"], d["attempts"], d["last_status_code"]) for d in log["items"]} == {
        ("succeeded", 1, 200)
    }


async def test_a_wrong_secret_does_not_verify(
    client: httpx.AsyncClient, notifier: Notifier, fakes: Fakes, task_events: Callable
) -> None:
    await _create(client)
    await _run_task(notifier, task_events)
    await notifier.deliveries.deliver_due()
    with pytest.raises(WebhookVerificationError):
        Webhook(
            SecretBox.from_setting(KEY).open(SecretBox([KEY]).seal("whsec_" + "A" * 44))
        ).verify(fakes.sender.sent[0].body, fakes.sender.sent[0].headers)


async def test_filters_and_tenants_decide_what_an_endpoint_gets(
    client: httpx.AsyncClient, notifier: Notifier, fakes: Fakes, task_events: Callable
) -> None:
    await _create(client, event_types=["task.succeeded", "task.failed"])
    await _create(client, tenant="globex", url=OTHER_URL)
    await _run_task(notifier, task_events, "acme")
    await _run_task(notifier, task_events, "initech")  # no endpoints: nothing queued
    await notifier.deliveries.deliver_due()
    acme = [json.loads(s.body) for s in fakes.sender.sent if s.url == URL]
    assert [p["type"] for p in acme] == ["task.succeeded"]
    assert [s for s in fakes.sender.sent if s.url == OTHER_URL] == []  # globex saw nothing


async def test_failures_are_retried_with_the_same_webhook_id_then_fail(
    client: httpx.AsyncClient, notifier: Notifier, fakes: Fakes, task_events: Callable
) -> None:
    created = await _create(client, event_types=["task.succeeded"])
    fakes.sender.answer(URL, 500, None, 503, 502)
    await _run_task(notifier, task_events)
    await notifier.deliveries.deliver_due()
    for delay in DELAYS:
        assert await notifier.deliveries.deliver_due() == 0  # not due yet
        fakes.clock.advance(delay * 1.1)
        assert await notifier.deliveries.deliver_due() == 1
    ids = {s.headers["webhook-id"] for s in fakes.sender.sent}
    assert len(fakes.sender.sent) == 4
    assert len(ids) == 1
    [delivery] = (
        await client.get(f"/internal/webhooks/{created['id']}/deliveries", headers=_auth())
    ).json()["items"]
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == (
        "failed",
        4,
        502,
    )
    assert delivery["next_attempt_at"] is None


async def test_a_pending_retry_says_when_it_is_due(
    client: httpx.AsyncClient, notifier: Notifier, fakes: Fakes, task_events: Callable
) -> None:
    created = await _create(client, event_types=["task.succeeded"])
    fakes.sender.answer(URL, None)
    await _run_task(notifier, task_events)
    await notifier.deliveries.deliver_due()
    [delivery] = (
        await client.get(f"/internal/webhooks/{created['id']}/deliveries", headers=_auth())
    ).json()["items"]
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == (
        "pending",
        1,
        None,
    )
    assert "no answer" in delivery["last_error"]
    assert delivery["next_attempt_at"] is not None


async def test_410_disables_the_endpoint_with_a_reason_until_re_enabled(
    client: httpx.AsyncClient, notifier: Notifier, fakes: Fakes, task_events: Callable
) -> None:
    created = await _create(client, event_types=["task.succeeded"])
    base = f"/internal/webhooks/{created['id']}"
    fakes.sender.answer(URL, 410)
    await _run_task(notifier, task_events)
    await notifier.deliveries.deliver_due()
    shown = (await client.get(base, headers=_auth())).json()
    assert shown["enabled"] is False
    assert "410" in shown["disabled_reason"]
    await _run_task(notifier, task_events)  # nothing is queued for a disabled endpoint
    assert await notifier.deliveries.deliver_due() == 0
    enabled = await client.patch(base, json={"enabled": True}, headers=_auth())
    assert (enabled.json()["enabled"], enabled.json()["disabled_reason"]) == (True, None)
    await _run_task(notifier, task_events)
    assert await notifier.deliveries.deliver_due() == 1


async def test_an_endpoint_failing_for_days_is_disabled(
    client: httpx.AsyncClient, notifier: Notifier, fakes: Fakes, task_events: Callable
) -> None:
    created = await _create(client, event_types=["task.succeeded"])
    fakes.sender.answer(URL, *[500] * 10)
    await _run_task(notifier, task_events)
    await notifier.deliveries.deliver_due()  # failing since now
    fakes.clock.advance(timedelta(hours=23).total_seconds())
    await _run_task(notifier, task_events)
    await notifier.deliveries.deliver_due()
    assert (await client.get(f"/internal/webhooks/{created['id']}", headers=_auth())).json()[
        "enabled"
    ]
    fakes.clock.advance(timedelta(hours=2).total_seconds())
    await notifier.deliveries.deliver_due()
    shown = (await client.get(f"/internal/webhooks/{created['id']}", headers=_auth())).json()
    assert shown["enabled"] is False
    assert "no successful delivery since" in shown["disabled_reason"]


async def test_a_success_resets_the_failure_clock(
    client: httpx.AsyncClient, notifier: Notifier, fakes: Fakes, task_events: Callable
) -> None:
    created = await _create(client, event_types=["task.succeeded"])
    fakes.sender.answer(URL, 500, 200, 500)
    await _run_task(notifier, task_events)
    await notifier.deliveries.deliver_due()
    fakes.clock.advance(20 * 3600)
    await _run_task(notifier, task_events)
    await notifier.deliveries.deliver_due()  # the retry of the first (500) ... and the second
    fakes.clock.advance(20 * 3600)
    await notifier.deliveries.deliver_due()
    shown = (await client.get(f"/internal/webhooks/{created['id']}", headers=_auth())).json()
    assert shown["enabled"] is True


async def test_after_a_rotation_both_secrets_sign_until_the_overlap_ends(
    client: httpx.AsyncClient, notifier: Notifier, fakes: Fakes, task_events: Callable
) -> None:
    created = await _create(client, event_types=["task.succeeded"])
    rotated = await client.post(
        f"/internal/webhooks/{created['id']}/rotate-secret", headers=_auth()
    )
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new != created["secret"]
    assert new.startswith("whsec_")
    await _run_task(notifier, task_events)
    await notifier.deliveries.deliver_due()
    sent = fakes.sender.sent[-1]
    assert len(sent.headers["webhook-signature"].split(" ")) == 2
    _verified(new, sent)
    _verified(created["secret"], sent)
    fakes.clock.advance(86400 + 1)
    await _run_task(notifier, task_events)
    await notifier.deliveries.deliver_due()
    sent = fakes.sender.sent[-1]
    assert len(sent.headers["webhook-signature"].split(" ")) == 1
    fakes.clock.now = datetime.now(UTC)  # the receiver's clock: verify as if sent just now
    later = Webhook(new).sign(sent.headers["webhook-id"], fakes.clock(), sent.body.decode())
    assert sent.headers["webhook-signature"].split(",")[0] == later.split(",")[0]


async def test_the_delivery_log_is_newest_first_and_cursor_paged(
    client: httpx.AsyncClient, notifier: Notifier, fakes: Fakes, task_events: Callable
) -> None:
    created = await _create(client)
    await _run_task(notifier, task_events)
    base = f"/internal/webhooks/{created['id']}/deliveries"
    first = (await client.get(base, params={"limit": 2}, headers=_auth())).json()
    assert [d["seq"] for d in first["items"]] == [5, 4]
    second = (
        await client.get(base, params={"limit": 2, "cursor": first["next_cursor"]}, headers=_auth())
    ).json()
    third = (
        await client.get(
            base, params={"limit": 2, "cursor": second["next_cursor"]}, headers=_auth()
        )
    ).json()
    assert [d["seq"] for d in second["items"] + third["items"]] == [3, 2, 1]
    assert third["next_cursor"] is None
    assert all(d["status"] == "pending" for d in first["items"])
    await notifier.deliveries.deliver_due()
    done = (await client.get(base, params={"status": "succeeded"}, headers=_auth())).json()
    assert len(done["items"]) == 5
    bad = await client.get(base, params={"cursor": "nonsense!"}, headers=_auth())
    assert bad.status_code == 400


async def test_replay_sends_a_tasks_events_after_a_seq_again(
    client: httpx.AsyncClient, notifier: Notifier, fakes: Fakes, task_events: Callable
) -> None:
    created = await _create(client)
    t = await _run_task(notifier, task_events)
    await notifier.deliveries.deliver_due()
    first_ids = {json.loads(s.body)["seq"]: s.headers["webhook-id"] for s in fakes.sender.sent}
    fakes.sender.sent.clear()
    replay = await client.post(
        f"/internal/webhooks/{created['id']}/replay",
        json={"task_id": str(t.task_id), "after": 2},
        headers=_auth(),
    )
    assert replay.status_code == 202
    assert replay.json() == {"queued": 3}
    await notifier.deliveries.deliver_due()
    again = {json.loads(s.body)["seq"]: s.headers["webhook-id"] for s in fakes.sender.sent}
    assert again == {seq: first_ids[seq] for seq in (3, 4, 5)}  # same ids: receivers dedupe


async def test_replay_of_another_tenants_task_is_404_and_queues_nothing(
    client: httpx.AsyncClient, notifier: Notifier, fakes: Fakes, task_events: Callable
) -> None:
    created = await _create(client)
    theirs = await _run_task(notifier, task_events, "globex")
    replay = await client.post(
        f"/internal/webhooks/{created['id']}/replay",
        json={"task_id": str(theirs.task_id)},
        headers=_auth(),
    )
    assert replay.status_code == 404
    assert fakes.webhooks.rows == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"task_id": "x"},
        {"since": "yesterday"},
        {"since": "2025-01-01T00:00:00Z", "after": 3},
        {"task_id": "6c0e4b8e-1d1c-4b5e-9d69-0d7d4a6c2f11", "since": "2025-01-01T00:00:00Z"},
    ],
)
async def test_a_bad_replay_request_is_422(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    created = await _create(client)
    response = await client.post(
        f"/internal/webhooks/{created['id']}/replay", json=body, headers=_auth()
    )
    assert response.status_code == 422


async def test_the_test_event_is_delivered_whatever_the_filter(
    client: httpx.AsyncClient, notifier: Notifier, fakes: Fakes
) -> None:
    created = await _create(client, event_types=["task.failed"])
    queued = await client.post(f"/internal/webhooks/{created['id']}/test", headers=_auth())
    assert queued.status_code == 202
    await notifier.deliveries.deliver_due()
    [sent] = fakes.sender.sent
    payload = _verified(created["secret"], sent)
    assert payload["type"] == "webhook.test"
    assert payload["event_id"] == queued.json()["event_id"] == sent.headers["webhook-id"]
    assert payload["data"] == {"webhook_id": created["id"]}


# --- the worker's bounds and decisions ---


def _claimed(attempts: int = 0, failing_since: Any = None) -> ClaimedDelivery:
    return ClaimedDelivery(
        id=uuid4(),
        endpoint_id=uuid4(),
        tenant_id="acme",
        url=URL,
        event_id=uuid4(),
        type="task.succeeded",
        task_id=uuid4(),
        seq=1,
        body="{}",
        traceparent=None,
        attempts=attempts,
        sealed_secret="x",
        sealed_previous_secret=None,
        previous_secret_expires_at=None,
        failing_since=failing_since,
    )


def test_decide_follows_the_retry_schedule(fakes: Fakes) -> None:
    policy = DeliveryPolicy(
        retry_delays=(5, 60),
        disable_after=timedelta(days=5),
        secret_overlap=timedelta(days=1),
        timeout_seconds=10,
        concurrency=8,
        endpoint_concurrency=2,
        tenant_concurrency=4,
        poll_interval_seconds=1,
    )
    now = fakes.clock()
    failed = AttemptResult(503, None, 0.1)
    first = decide(_claimed(0), failed, now=now, policy=policy, jitter=lambda d: d)
    second = decide(_claimed(1), failed, now=now, policy=policy, jitter=lambda d: d)
    last = decide(_claimed(2), failed, now=now, policy=policy, jitter=lambda d: d)
    assert (first.status, first.next_attempt_at) == ("pending", now + timedelta(seconds=5))
    assert (second.status, second.next_attempt_at) == ("pending", now + timedelta(seconds=60))
    assert (last.status, last.next_attempt_at) == (DeliveryStatus.FAILED, None)
    redirect = decide(
        _claimed(0), AttemptResult(302, "redirects are not followed", 0.1), now=now, policy=policy
    )
    assert redirect.status is DeliveryStatus.PENDING


def test_webhooks_offer_exactly_the_event_types_timelines_carry() -> None:
    assert set(WEBHOOK_EVENT_TYPES) == set(HANDLERS)


async def test_an_attempt_continues_the_events_trace_and_counts_its_outcome(
    client: httpx.AsyncClient,
    notifier: Notifier,
    fakes: Fakes,
    task_events: Callable,
    telemetry: Recorded,
) -> None:
    await _create(client, event_types=["task.submitted"])
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    submitted = task_events().submitted()
    submitted = submitted.model_copy(
        update={
            "metadata": submitted.metadata.model_copy(
                update={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
            )
        }
    )
    fakes.sender.answer(URL, 503)
    await notifier.timelines.record(submitted)
    await notifier.deliveries.deliver_due()
    [span] = [s for s in telemetry.finished() if s.name == "webhook deliver"]
    assert f"{span.context.trace_id:032x}" == trace_id
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 503
    assert span.attributes["relay.webhook.attempt"] == 1
    assert not span.status.is_ok
    telemetry.metrics.collect()
    data = telemetry.metrics.get_metrics_data()
    points = [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "relay.webhooks.deliveries"
        for point in metric.data.data_points
    ]
    assert any(p.attributes == {"outcome": "retrying"} and p.value >= 1 for p in points)


async def test_an_attempt_cut_short_by_a_crash_counts_toward_the_retries(
    client: httpx.AsyncClient, notifier: Notifier, fakes: Fakes, task_events: Callable
) -> None:
    """A delivery whose attempt kills the worker every time still ends, instead of being
    retried every lease forever."""
    created = await _create(client, event_types=["task.submitted"])
    await notifier.timelines.record(task_events().submitted())
    lease = 40.0
    for _ in range(len(DELAYS) + 1):  # claimed, and the worker dies before it records anything
        [claimed] = await fakes.webhooks.claim_due(
            ClaimBounds(limit=10, per_endpoint=4, per_tenant=8), lease_seconds=lease
        )
        fakes.clock.advance(lease)
    fakes.sender.answer(URL, 500)
    assert await notifier.deliveries.deliver_due() == 1
    [delivery] = (
        await client.get(f"/internal/webhooks/{created['id']}/deliveries", headers=_auth())
    ).json()["items"]
    assert (delivery["status"], delivery["attempts"]) == ("failed", len(DELAYS) + 2)
    assert claimed.attempts == len(DELAYS)
