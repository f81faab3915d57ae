"""Webhooks end to end (DESIGN.md, *Webhooks (contract)*; ADR 0013): endpoints managed through
the public API of a real `relay up`, deliveries POSTed over real HTTP to a local receiver
(relay_devkit.receiver; its path picks how it answers).

The receiver listens on 127.0.0.1, so every delivery test runs on the session's stack, which
allows private targets (the local stack's RELAY_WEBHOOKS_ALLOW_PRIVATE=true) and keeps the
documented defaults: an attempt has 10 s, the first retry comes about 5 s after a failure. The
SSRF refusals need a stack that refuses private targets: ``strict_stack``, this module's own,
for the last test only; it starts in the background while the others run. (One stack more,
not two: a stack with short retries would have to allow private targets too, and the refusals
would then need a third.)

Each test has its own receiver and its own paths under it; the module's two tenants are its
own (not the session's), and every endpoint is deleted after each test, so no test's tasks are
delivered to another's endpoints and nothing is left retrying on the session's stack.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from relay_devkit.api_client import PublicApi, TimelineEvent
from relay_devkit.receiver import Received, serve_receiver
from relay_devkit.testing import fresh_database
from relay_ops.stack.process import RunningStack, running_stack

pytestmark = pytest.mark.e2e

TIMEOUT = 10.0  # RELAY_WEBHOOKS_TIMEOUT_SECONDS on the session's stack (the default)
FIRST_RETRY = 5.0  # the first of RELAY_WEBHOOKS_RETRY_DELAYS (the default; plus 0-10 % jitter)
PROBLEM = "application/problem+json"


# --- the module's tenants on the session's stack -------------------------------------------------


@pytest.fixture(scope="module")
def hooks_key(stack: RunningStack) -> str:
    return stack.create_key(f"hooks-{uuid.uuid4().hex[:6]}")


@pytest.fixture(scope="module")
def other_hooks_key(stack: RunningStack) -> str:
    return stack.create_key(f"rival-{uuid.uuid4().hex[:6]}")


@asynccontextmanager
async def tenant_client(url: str, key: str) -> AsyncIterator[PublicApi]:
    """A client of one tenant; its endpoints are deleted afterwards, so nothing keeps being
    delivered or retried once the test is over."""
    client = PublicApi(url, key)
    try:
        yield client
        for endpoint in await client.webhooks():
            await client.delete_webhook(endpoint["id"])
    finally:
        await client.aclose()


@pytest.fixture
async def api(stack: RunningStack, hooks_key: str) -> AsyncIterator[PublicApi]:
    """Tenant A of this module. Not the session's tenant: a task another module left running
    could reach this module's endpoints and upset their counts."""
    async with tenant_client(stack.gateway_url, hooks_key) as client:
        yield client


@pytest.fixture
async def other_api(stack: RunningStack, other_hooks_key: str) -> AsyncIterator[PublicApi]:
    """Tenant B of this module."""
    async with tenant_client(stack.gateway_url, other_hooks_key) as client:
        yield client


@pytest.fixture
def tag() -> str:
    """A path segment of this test's own, under the receiver's behaviour prefix."""
    return uuid.uuid4().hex[:8]


# --- helpers -------------------------------------------------------------------------------------


async def run_task(api: PublicApi, prompt: str) -> tuple[dict[str, Any], list[TimelineEvent]]:
    """Submit a task and read its whole timeline over SSE (it ends after the terminal event)."""
    task = await api.submit(prompt)
    return task, await api.timeline(task["id"])


async def settled(check: Callable[[], Awaitable[None]], *, within: float = 15) -> None:
    """Until ``check()`` stops failing its assertions (the last failure at the deadline)."""
    deadline = time.monotonic() + within
    while True:
        try:
            await check()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


def verified(secret: str, received: Received) -> dict[str, Any]:
    """The delivery's body once its Standard Webhooks signature checks out with ``secret``."""
    body: dict[str, Any] = Webhook(secret).verify(received.body, received.headers)
    return body


def forged_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def by_seq(received: list[Received]) -> dict[int, Received]:
    seqs = [r.json()["seq"] for r in received]
    assert len(seqs) == len(set(seqs)), f"a seq was delivered twice: {sorted(seqs)}"
    return {r.json()["seq"]: r for r in received}


def created(delivery: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(delivery["created_at"])


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    return problem


# --- signatures, bodies, filters -----------------------------------------------------------------


async def test_deliveries_are_signed_and_carry_exactly_the_events_the_stream_shows(
    api: PublicApi, tag: str
) -> None:
    async with serve_receiver() as receiver:
        endpoint = await api.create_webhook(f"{receiver.url}/ok/{tag}")
        secret = endpoint["secret"]
        assert secret.startswith("whsec_")
        assert endpoint["event_types"] == ["*"]  # the default
        assert (endpoint["enabled"], endpoint["disabled_reason"]) == (True, None)
        shown = await api.webhook(endpoint["id"])
        assert "secret" not in shown  # shown only when created
        assert shown == {k: v for k, v in endpoint.items() if k != "secret"}

        task, events = await run_task(api, "/steps 2\n/artifact notes.md")
        assert events[-1].event == "task.succeeded"
        delivered = by_seq(await receiver.settled(f"/ok/{tag}", len(events)))

        assert sorted(delivered) == [e.id for e in events]  # every event, each once
        for event in events:
            received = delivered[event.id]
            assert verified(secret, received) == event.data  # the SSE data line, to the key
            assert received.headers["webhook-id"] == event.data["event_id"]
            assert received.headers["content-type"] == "application/json"
            assert abs(int(received.headers["webhook-timestamp"]) - received.at) < 60
            assert received.json()["task_id"] == task["id"]
        assert len({r.headers["webhook-id"] for r in delivered.values()}) == len(events)

        # a receiver with another secret, or a body changed on the way, is not fooled
        sample = delivered[events[-1].id]
        with pytest.raises(WebhookVerificationError):
            Webhook(forged_secret()).verify(sample.body, sample.headers)
        tampered = sample.body.replace(b'"task.succeeded"', b'"task.failed"')
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(tampered, sample.headers)


async def test_an_endpoint_gets_only_the_event_types_it_asked_for(api: PublicApi, tag: str) -> None:
    async with serve_receiver() as receiver:
        everything = await api.create_webhook(f"{receiver.url}/ok/{tag}/all", event_types=["*"])
        finished = await api.create_webhook(
            f"{receiver.url}/ok/{tag}/succeeded", event_types=["task.succeeded"]
        )
        failures = await api.create_webhook(
            f"{receiver.url}/ok/{tag}/failed", event_types=["task.failed", "task.cancelled"]
        )
        _, events = await run_task(api, "/steps 1")
        all_delivered = by_seq(await receiver.settled(f"/ok/{tag}/all", len(events)))
        [succeeded] = await receiver.settled(f"/ok/{tag}/succeeded", 1)

        assert [all_delivered[e.id].json()["type"] for e in events] == [e.event for e in events]
        assert verified(finished["secret"], succeeded) == events[-1].data
        assert succeeded.json()["type"] == "task.succeeded"
        # deliveries are queued in the transaction that appends the event, so once the
        # timeline is complete each log is complete: what an endpoint did not ask for is not
        # delivered late either
        assert len(await api.webhook_deliveries(everything["id"])) == len(events)
        assert [d["type"] for d in await api.webhook_deliveries(finished["id"])] == [
            "task.succeeded"
        ]
        assert await api.webhook_deliveries(failures["id"]) == []
        assert receiver.at(f"/ok/{tag}/failed") == []
        assert len(receiver.at(f"/ok/{tag}/succeeded")) == 1


# --- tenants -------------------------------------------------------------------------------------


async def test_a_tenant_never_receives_or_reaches_another_tenants_webhooks(
    api: PublicApi, other_api: PublicApi, tag: str
) -> None:
    async with serve_receiver() as receiver:
        mine = await api.create_webhook(f"{receiver.url}/ok/{tag}/a")
        theirs = await other_api.create_webhook(f"{receiver.url}/ok/{tag}/b")
        before = datetime.now(UTC)
        (task_a, events_a), (task_b, events_b) = await asyncio.gather(
            run_task(api, "/steps 1"), run_task(other_api, "/steps 2")
        )
        # B's endpoint has all of B's events: they were appended and dispatched
        to_b = await receiver.settled(f"/ok/{tag}/b", len(events_b))
        to_a = await receiver.settled(f"/ok/{tag}/a", len(events_a))
        assert {r.json()["task_id"] for r in to_b} == {task_b["id"]}
        assert {r.json()["task_id"] for r in to_a} == {task_a["id"]}
        assert {d["task_id"] for d in await api.webhook_deliveries(mine["id"])} == {task_a["id"]}

        # A's endpoint, to B, is exactly a missing one
        url = f"/v1/webhooks/{mine['id']}"
        answers = {
            "GET": await other_api.http.get(url),
            "PATCH": await other_api.http.patch(url, json={"enabled": False}),
            "DELETE": await other_api.http.delete(url),
            "deliveries": await other_api.http.get(f"{url}/deliveries"),
            "replay": await other_api.http.post(f"{url}/replay", json={"task_id": task_b["id"]}),
            "test": await other_api.http.post(f"{url}/test"),
            "rotate-secret": await other_api.http.post(f"{url}/rotate-secret"),
        }
        for what, answer in answers.items():
            assert answer.status_code == 404, (what, answer.text)
            assert answer.headers["content-type"].startswith(PROBLEM), what
        missing = await other_api.http.get(f"/v1/webhooks/{uuid.uuid4()}")
        assert missing.json()["title"] == answers["GET"].json()["title"]
        assert [e["id"] for e in await other_api.webhooks()] == [theirs["id"]]
        # ... and B changed nothing: A's endpoint, its secret and its log are as they were
        assert await api.webhook(mine["id"]) == {k: v for k, v in mine.items() if k != "secret"}
        assert len(await api.webhook_deliveries(mine["id"])) == len(events_a)

        # A cannot replay B's task, and a replay by time takes only A's own events
        named = await api.http.post(f"{url}/replay", json={"task_id": task_b["id"]})
        assert_problem(named, 404)
        replay = await api.http.post(f"{url}/replay", json={"since": before.isoformat()})
        assert replay.status_code == 202, replay.text
        assert replay.json() == {"queued": len(events_a)}
        again = await receiver.settled(f"/ok/{tag}/a", 2 * len(events_a))
        assert {r.json()["task_id"] for r in again} == {task_a["id"]}
        for received in again:
            verified(mine["secret"], received)
        assert len(receiver.at(f"/ok/{tag}/b")) == len(events_b)


# --- failures: retries, 410, hostile receivers ---------------------------------------------------


async def test_a_failed_attempt_is_retried_with_the_same_webhook_id(
    api: PublicApi, tag: str
) -> None:
    """After a 5xx and after no answer within the timeout, with the documented delays."""
    async with serve_receiver(failures=1) as receiver:
        flaky = await api.create_webhook(
            f"{receiver.url}/fail-then-ok/{tag}", event_types=["task.succeeded"]
        )
        silent = await api.create_webhook(
            f"{receiver.url}/hang/{tag}", event_types=["task.succeeded"]
        )
        _, events = await run_task(api, "/steps 1")
        terminal = events[-1].data

        # 500, then 204 about 5 s later: the same webhook-id, body and secret
        first, second = await receiver.settled(f"/fail-then-ok/{tag}", 2, within=FIRST_RETRY + 10)
        assert first.headers["webhook-id"] == second.headers["webhook-id"] == terminal["event_id"]
        assert verified(flaky["secret"], first) == verified(flaky["secret"], second) == terminal
        assert second.at - first.at >= FIRST_RETRY - 0.1

        async def recorded() -> None:
            [delivery] = await api.webhook_deliveries(flaky["id"])
            assert (delivery["status"], delivery["attempts"]) == ("succeeded", 2), delivery
            assert (delivery["last_status_code"], delivery["next_attempt_at"]) == (204, None)
            assert delivery["event_id"] == terminal["event_id"]

        await settled(recorded)

        # no answer: cut off after 10 s, tried again about 5 s later, the same webhook-id
        first, second = await receiver.settled(f"/hang/{tag}", 2, within=TIMEOUT + FIRST_RETRY + 10)
        assert first.headers["webhook-id"] == second.headers["webhook-id"] == terminal["event_id"]
        assert verified(silent["secret"], second) == terminal
        assert second.at - first.at >= TIMEOUT + FIRST_RETRY - 0.1
        [delivery] = await api.webhook_deliveries(silent["id"])  # the second attempt is out
        # an attempt counts from its claim: the second, still waiting for an answer, is counted
        assert (delivery["status"], delivery["attempts"]) == ("pending", 2), delivery
        assert delivery["last_status_code"] is None
        assert delivery["last_error"] == f"no answer within {TIMEOUT:g}s"


async def test_410_gone_disables_the_endpoint_until_it_is_enabled_again(
    api: PublicApi, tag: str
) -> None:
    async with serve_receiver() as receiver:
        gone = await api.create_webhook(
            f"{receiver.url}/gone/{tag}", event_types=["task.succeeded"]
        )
        _, events = await run_task(api, "/steps 1")

        async def disabled() -> None:
            endpoint = await api.webhook(gone["id"])
            assert endpoint["enabled"] is False
            assert "410" in endpoint["disabled_reason"]

        await settled(disabled)
        [delivery] = await api.webhook_deliveries(gone["id"])
        assert delivery["event_id"] == events[-1].data["event_id"]
        assert (delivery["status"], delivery["attempts"]) == ("failed", 1)  # final: no retry
        assert (delivery["last_status_code"], delivery["next_attempt_at"]) == (410, None)
        assert len(receiver.at(f"/gone/{tag}")) == 1

        # disabled: a new task's events are neither queued nor sent
        await run_task(api, "/steps 1")
        assert len(await api.webhook_deliveries(gone["id"])) == 1
        assert len(receiver.at(f"/gone/{tag}")) == 1

        # enabled again (pointed somewhere that answers): deliveries resume
        change = {"enabled": True, "url": f"{receiver.url}/ok/{tag}"}
        enabled = await api.http.patch(f"/v1/webhooks/{gone['id']}", json=change)
        assert enabled.status_code == 200, enabled.text
        assert (enabled.json()["enabled"], enabled.json()["disabled_reason"]) == (True, None)
        _, events = await run_task(api, "/steps 1")
        [received] = await receiver.settled(f"/ok/{tag}", 1)
        assert verified(gone["secret"], received) == events[-1].data


async def test_hostile_receivers_do_not_slow_a_healthy_endpoint(api: PublicApi, tag: str) -> None:
    """One that never answers, one that answers 1 GiB, one that redirects, beside a healthy
    one of the same tenant: the healthy one gets each event about when the stream shows it,
    and the redirect is not followed."""
    async with serve_receiver() as receiver:
        hostile = {
            path: await api.create_webhook(f"{receiver.url}/{path}/{tag}")
            for path in ("hang", "huge", "redirect")
        }
        await api.create_webhook(f"{receiver.url}/ok/{tag}")

        task = await api.submit("/steps 2")
        shown: dict[int, float] = {}  # seq -> when the SSE stream showed it
        async with aconnect_sse(api.http, "GET", f"/v1/tasks/{task['id']}/events") as source:
            async for sse in source.aiter_sse():
                if sse.data:
                    shown[int(sse.id)] = time.time()
        healthy = by_seq(await receiver.settled(f"/ok/{tag}", len(shown)))
        late = {seq: healthy[seq].at - at for seq, at in shown.items()}
        # behind a hanging endpoint it would wait out its 10 s timeout
        assert max(late.values()) < TIMEOUT / 2, late
        hung = await receiver.settled(f"/hang/{tag}", 1)
        assert hung[0].at < max(r.at for r in healthy.values())  # it was hanging meanwhile

        async def cut_off_and_not_followed() -> None:
            huge = await api.webhook_deliveries(hostile["huge"]["id"])
            assert [(d["status"], d["last_status_code"]) for d in huge] == [
                ("succeeded", 200)
            ] * len(shown)
            redirected = await api.webhook_deliveries(hostile["redirect"]["id"])
            assert len(redirected) == len(shown)
            for delivery in redirected:
                assert delivery["attempts"] >= 1, delivery
                assert delivery["status"] == "pending"  # retried later, like any failure
                assert delivery["last_status_code"] == 307
                assert delivery["last_error"] == "redirects are not followed"

        await settled(cut_off_and_not_followed)
        assert receiver.at("/ok/redirected") == []


# --- rotation, replay, the test event ------------------------------------------------------------


async def test_after_a_rotation_deliveries_are_signed_with_both_secrets(
    api: PublicApi, tag: str
) -> None:
    async with serve_receiver() as receiver:
        endpoint = await api.create_webhook(
            f"{receiver.url}/ok/{tag}", event_types=["task.succeeded"]
        )
        old = endpoint["secret"]
        rotated = await api.http.post(f"/v1/webhooks/{endpoint['id']}/rotate-secret")
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["secret"]
        assert new.startswith("whsec_")
        assert new != old
        expires = datetime.fromisoformat(rotated.json()["previous_secret_expires_at"])
        assert abs(expires - (datetime.now(UTC) + timedelta(hours=24))) < timedelta(minutes=5)

        _, events = await run_task(api, "/steps 1")
        [received] = await receiver.settled(f"/ok/{tag}", 1)
        signatures = received.headers["webhook-signature"].split(" ")
        assert len(signatures) == 2
        assert all(s.startswith("v1,") for s in signatures)
        assert verified(new, received) == verified(old, received) == events[-1].data

        # new first, then old: each secret verifies its own signature alone
        for signature, signer, other in ((signatures[0], new, old), (signatures[1], old, new)):
            alone = Received(
                received.path,
                {**received.headers, "webhook-signature": signature},
                received.body,
                received.at,
            )
            assert verified(signer, alone) == events[-1].data
            with pytest.raises(WebhookVerificationError):
                verified(other, alone)


async def test_replay_sends_events_again_under_their_own_webhook_ids(
    api: PublicApi, tag: str
) -> None:
    async with serve_receiver() as receiver:
        endpoint = await api.create_webhook(f"{receiver.url}/ok/{tag}")
        url = f"/v1/webhooks/{endpoint['id']}/replay"
        since = datetime.now(UTC)
        task, events = await run_task(api, "/steps 2")
        n = len(events)
        originals = by_seq(await receiver.settled(f"/ok/{tag}", n))

        # one task, after a seq
        replay = await api.http.post(url, json={"task_id": task["id"], "after": 2})
        assert replay.status_code == 202, replay.text
        assert replay.json() == {"queued": n - 2}
        replayed = by_seq((await receiver.settled(f"/ok/{tag}", 2 * n - 2))[n:])
        assert sorted(replayed) == [e.id for e in events[2:]]
        for seq, received in replayed.items():
            assert received.headers["webhook-id"] == originals[seq].headers["webhook-id"]
            assert verified(endpoint["secret"], received) == originals[seq].json()

        # every task's events since a time (only this test's task appended any since)
        replay = await api.http.post(url, json={"since": since.isoformat()})
        assert replay.status_code == 202, replay.text
        assert replay.json() == {"queued": n}
        replayed = by_seq((await receiver.settled(f"/ok/{tag}", 3 * n - 2))[2 * n - 2 :])
        assert sorted(replayed) == [e.id for e in events]
        for seq, received in replayed.items():
            assert received.headers["webhook-id"] == originals[seq].headers["webhook-id"]
            assert verified(endpoint["secret"], received) == originals[seq].json()
        assert len(await api.webhook_deliveries(endpoint["id"])) == 3 * n - 2

        # nothing to select, two selections, a task that does not exist
        assert_problem(await api.http.post(url, json={}), 422)
        both = {"task_id": task["id"], "since": since.isoformat()}
        assert_problem(await api.http.post(url, json=both), 422)
        assert_problem(await api.http.post(url, json={"task_id": str(uuid.uuid4())}), 404)
        assert len(receiver.at(f"/ok/{tag}")) == 3 * n - 2


async def test_the_test_event_reaches_the_endpoint_signed(api: PublicApi, tag: str) -> None:
    async with serve_receiver() as receiver:
        endpoint = await api.create_webhook(
            f"{receiver.url}/ok/{tag}", event_types=["task.succeeded"]
        )
        queued = await api.http.post(f"/v1/webhooks/{endpoint['id']}/test")
        assert queued.status_code == 202, queued.text
        event_id = queued.json()["event_id"]

        [received] = await receiver.settled(f"/ok/{tag}", 1)
        body = verified(endpoint["secret"], received)
        assert received.headers["webhook-id"] == event_id
        assert body["type"] == "webhook.test"  # whatever the endpoint's filter
        assert (body["event_id"], body["task_id"], body["seq"]) == (event_id, None, None)
        assert body["data"] == {"webhook_id": endpoint["id"]}

        async def logged() -> None:
            [delivery] = await api.webhook_deliveries(endpoint["id"])
            assert (delivery["type"], delivery["event_id"]) == ("webhook.test", event_id)
            assert (delivery["status"], delivery["last_status_code"]) == ("succeeded", 204)

        await settled(logged)


# --- the delivery log ----------------------------------------------------------------------------


async def test_the_delivery_log_lists_deliveries_newest_first_a_page_at_a_time(
    api: PublicApi, tag: str
) -> None:
    async with serve_receiver() as receiver:
        endpoint = await api.create_webhook(f"{receiver.url}/ok/{tag}")
        url = f"/v1/webhooks/{endpoint['id']}/deliveries"
        task, events = await run_task(api, "/steps 3")
        await receiver.settled(f"/ok/{tag}", len(events))

        async def all_succeeded() -> None:
            log = await api.webhook_deliveries(endpoint["id"])
            assert [d["status"] for d in log] == ["succeeded"] * len(events), log

        await settled(all_succeeded)
        whole = (await api.http.get(url, params={"limit": 100})).json()
        assert whole["next_cursor"] is None
        log = whole["items"]
        assert sorted(d["seq"] for d in log) == [e.id for e in events]
        # newest first. Deliveries queued in one transaction (events appended together, a
        # replay) are equally new and come in no particular order among themselves.
        for newer, older in itertools.pairwise(log):
            assert created(newer) >= created(older), log
            if created(newer) > created(older):
                assert newer["seq"] > older["seq"], log  # this task's appends are in seq order
        timeline = {e.id: e for e in events}
        for delivery in log:
            event = timeline[delivery["seq"]]
            assert delivery["event_id"] == event.data["event_id"]
            assert (delivery["type"], delivery["task_id"]) == (event.event, task["id"])
            assert (delivery["attempts"], delivery["last_status_code"]) == (1, 204)
            assert (delivery["last_error"], delivery["next_attempt_at"]) == (None, None)

        pages: list[list[dict[str, Any]]] = []
        cursor = None
        while True:
            params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            page = await api.http.get(url, params=params)
            assert page.status_code == 200, page.text
            pages.append(page.json()["items"])
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        assert [len(p) for p in pages] == [3] * (len(events) // 3) + (
            [len(events) % 3] if len(events) % 3 else []
        )
        assert [d for p in pages for d in p] == log

        succeeded = await api.http.get(url, params={"status": "succeeded"})
        assert succeeded.json()["items"] == log
        assert (await api.http.get(url, params={"status": "failed"})).json()["items"] == []
        assert_problem(await api.http.get(url, params={"cursor": "not-a-cursor"}), 400)
        assert_problem(await api.http.get(url, params={"status": "lost"}), 422)


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "not a url"}, "url"),
        ({"url": "ftp://example.com/hooks"}, "url"),
        ({"url": "http://127.0.0.1:9/hooks", "event_types": ["task.exploded"]}, "event_types"),
        ({"url": "http://127.0.0.1:9/hooks", "description": "x" * 501}, "description"),
    ],
    ids=["malformed-url", "ftp-scheme", "unknown-event-type", "description-501"],
)
async def test_bad_input_is_a_422_naming_the_field_and_changes_nothing(
    api: PublicApi, body: dict[str, Any], field: str
) -> None:
    existing = await api.create_webhook("http://127.0.0.1:9/kept", description="x" * 500)
    before = await api.webhooks()

    problem = assert_problem(await api.http.post("/v1/webhooks", json=body), 422)
    assert any(e["location"].split(".")[-1] == field for e in problem["errors"]), problem
    changed = await api.http.patch(f"/v1/webhooks/{existing['id']}", json=body)
    problem = assert_problem(changed, 422)
    assert any(e["location"].split(".")[-1] == field for e in problem["errors"]), problem

    assert await api.webhooks() == before


# --- SSRF: a stack that refuses private targets --------------------------------------------------


StrictStack = tuple[RunningStack, str]  # the stack, an API key on it


@pytest.fixture(scope="module", autouse=True)
def strict_stack(
    request: pytest.FixtureRequest,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    aws_credentials: None,
) -> Iterator[Future[StrictStack] | None]:
    """A stack as deployed: private targets refused (a user's own setting wins over the local
    stack's default). It starts in the background as the module begins, when a selected test
    needs it, so that its start-up overlaps the tests on the session's stack."""
    if not any("strict_api" in getattr(i, "fixturenames", ()) for i in request.session.items):
        yield None
        return
    with ThreadPoolExecutor(1, thread_name_prefix="strict-stack") as pool, ExitStack() as up:

        def start() -> StrictStack:
            database_url = up.enter_context(fresh_database())
            stack = up.enter_context(
                running_stack(
                    database_url,
                    redis_url,
                    tmp_path_factory.mktemp("strict-stack"),
                    RELAY_WEBHOOKS_ALLOW_PRIVATE="false",
                )
            )
            return stack, stack.create_key(f"strict-{uuid.uuid4().hex[:6]}")

        starting = pool.submit(start)
        try:
            yield starting
        finally:
            starting.exception()  # a start still going finishes before the stack is stopped


@pytest.fixture
async def strict_api(strict_stack: Future[StrictStack] | None) -> AsyncIterator[PublicApi]:
    assert strict_stack is not None
    stack, key = await asyncio.wrap_future(strict_stack)
    async with tenant_client(stack.gateway_url, key) as client:
        yield client


PRIVATE_TARGETS = [
    "http://127.0.0.1:8000/hooks",
    "http://localhost/hooks",
    "http://[::1]/hooks",
    "http://[::ffff:127.0.0.1]/hooks",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.8/hooks",
    "http://172.16.0.1/hooks",
    "http://192.168.1.10/hooks",
    "http://100.64.0.1/hooks",
    "http://0.0.0.0/hooks",
]


async def test_private_targets_are_refused_on_a_stack_that_does_not_allow_them(
    strict_api: PublicApi,
) -> None:
    for url in PRIVATE_TARGETS:
        problem = assert_problem(await strict_api.http.post("/v1/webhooks", json={"url": url}), 422)
        assert [e["location"] for e in problem["errors"]] == ["body.url"], (url, problem)
    assert await strict_api.webhooks() == []

    # a public address is taken (nothing is sent: this tenant has no tasks), and cannot then
    # be pointed inside
    public = await strict_api.create_webhook("https://93.184.215.14/relay-hooks")
    for url in PRIVATE_TARGETS[:2]:
        moved = await strict_api.http.patch(f"/v1/webhooks/{public['id']}", json={"url": url})
        problem = assert_problem(moved, 422)
        assert [e["location"] for e in problem["errors"]] == ["body.url"], (url, problem)
    assert (await strict_api.webhook(public["id"]))["url"] == "https://93.184.215.14/relay-hooks"
