"""The notifier (and with it the webhook worker) SIGKILLed twice while 100 tasks' events are
being delivered: every timeline event reaches the endpoint at least once, with the body SSE
shows and a valid signature; a duplicate only ever repeats the same webhook-id and body; nothing
arrives that no timeline holds; the delivery log ends with every delivery `succeeded`.

Each kill lands while the receiver holds a request unanswered, so at least one attempt is cut
off after its request arrived: it must come again, same webhook-id and body, once its lease runs
out (the attempt's timeout + 30 s, ADR 0013; RELAY_WEBHOOKS_TIMEOUT_SECONDS=3 makes that 33 s).
The kills come early in the run, so most of the leases run out while tasks are still running."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from relay_devkit.api_client import PublicApi, TimelineEvent
from relay_devkit.receiver import Received, Receiver, serve_receiver
from relay_devkit.testing import fresh_database
from relay_ops.stack.process import RunningStack, running_stack

from .conftest import FAST_RECOVERY
from .invariants import diagnose, timeline_problems
from .workload import all_terminal, record, submit_many

TASKS = 100
PROMPT = "Webhook kill task {n}.\n/steps 2"
# at least: submitted, started, progressed (x2), succeeded; artifact.published as well, unless
# it reached the notifier after the terminal event had been released (late: in no timeline)
EVENTS_PER_TASK = 5
TENANT = "faults"  # the tenant of the conftest's `api` key
TIMEOUT_SECONDS = 3.0
LEASE_SECONDS = TIMEOUT_SECONDS + 30  # notifier.delivery.DeliveryPolicy.lease_seconds
WEBHOOKS = {
    "RELAY_WEBHOOKS_TIMEOUT_SECONDS": f"{TIMEOUT_SECONDS:g}",
    # the receiver never fails; should an attempt fail anyway, it is retried within seconds
    "RELAY_WEBHOOKS_RETRY_DELAYS": "1,1,2,5,10,30",
    # more attempts in flight to the one endpoint: more of them cut off by each kill
    "RELAY_WEBHOOKS_ENDPOINT_CONCURRENCY": "16",
}
# SIGKILL the notifier on the arrival that brings this share of the (least) expected events
KILL_AT = (0.15, 0.4)


@pytest.fixture(scope="module")
def fault_stack(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory, aws_credentials: None
) -> Iterator[RunningStack]:
    """The conftest's stack, with short webhook timings for the notifier."""
    with (
        fresh_database() as database_url,
        running_stack(
            database_url,
            redis_url,
            tmp_path_factory.mktemp("webhook-kill-stack"),
            **FAST_RECOVERY,
            **WEBHOOKS,
        ) as up,
    ):
        yield up


class Signatures:
    """Verifies each arrival's signature soon after it arrives (Standard Webhooks refuses a
    timestamp more than five minutes from now, and a slow run can outlast that)."""

    def __init__(self, hooks: Receiver, secret: str) -> None:
        self._hooks = hooks
        self._webhook = Webhook(secret)
        self._checked = 0
        self.problems: list[str] = []

    def check_new(self) -> None:
        arrivals = self._hooks.received
        for arrival in arrivals[self._checked :]:
            try:
                self._webhook.verify(arrival.body, arrival.headers)
            except WebhookVerificationError as exc:
                self.problems.append(f"{arrival.headers.get('webhook-id')}: signature: {exc}")
        self._checked = len(arrivals)

    async def keep_checking(self) -> None:
        while True:
            self.check_new()
            await asyncio.sleep(0.5)


async def _register(api: PublicApi, url: str) -> dict[str, Any]:
    response = await api.http.post("/v1/webhooks", json={"url": url, "event_types": ["*"]})
    assert response.status_code == 201, response.text
    endpoint: dict[str, Any] = response.json()
    assert endpoint["secret"].startswith("whsec_")
    return endpoint


@dataclass
class Kill:
    pid: int
    at: float  # time.time()
    arrivals_before: int
    cut: Received  # the request the receiver held, unanswered, when the notifier died
    ready_at: float = 0.0


class KillOnArrival(list[Received]):
    """The receiver's record of arrivals (``Receiver.received``), which SIGKILLs the notifier
    on the arrival that reaches each threshold: while the receiver holds that request and has
    not answered it, so at least that attempt is certainly in flight and its outcome can never
    be recorded. Killed then, its delivery must come again after the lease, same webhook-id."""

    def __init__(self, stack: RunningStack, thresholds: list[int]) -> None:
        super().__init__()
        self._stack = stack
        self._thresholds = thresholds
        self.kills: list[Kill] = []
        self.killed = asyncio.Event()

    def append(self, arrival: Received, /) -> None:
        super().append(arrival)
        if self._thresholds and len(self) >= self._thresholds[0]:
            self._thresholds.pop(0)
            pid = self._stack.kill("notifier", signal.SIGKILL)
            self.kills.append(Kill(pid, time.time(), len(self) - 1, arrival))
            self.killed.set()


async def _restarts(stack: RunningStack, tripwire: KillOnArrival, count: int) -> None:
    """Wait for each kill and until the supervisor has the notifier back (ready)."""
    for n in range(count):
        while len(tripwire.kills) <= n:
            tripwire.killed.clear()
            await tripwire.killed.wait()
        kill = tripwire.kills[n]
        await asyncio.to_thread(stack.wait_restarted, "notifier", kill.pid, within=120)
        kill.ready_at = time.time()


async def _timelines(api: PublicApi, task_ids: list[str]) -> dict[str, list[TimelineEvent]]:
    limit = asyncio.Semaphore(20)

    async def one(task_id: str) -> tuple[str, list[TimelineEvent]]:
        async with limit:
            return task_id, await api.timeline(task_id, within=60)

    return dict(await asyncio.gather(*(one(t) for t in task_ids)))


async def _delivery_log(api: PublicApi, endpoint_id: str) -> list[dict[str, Any]]:
    """Every page of GET /v1/webhooks/{id}/deliveries."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        response = await api.http.get(f"/v1/webhooks/{endpoint_id}/deliveries", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


async def _every_event_arrived(
    api: PublicApi,
    hooks: Receiver,
    endpoint_id: str,
    prefix: str,
    expected: set[str],
    *,
    within: float,
) -> None:
    """Wait until every expected event has reached the endpoint. At the deadline, fail saying
    what the delivery log knows of the missing ones."""
    deadline = time.monotonic() + within
    while missing := expected - {r.headers.get("webhook-id") for r in hooks.at(prefix)}:
        if time.monotonic() > deadline:
            log = {d["event_id"]: d for d in await _delivery_log(api, endpoint_id)}
            raise AssertionError(
                f"{len(missing)} of {len(expected)} events never reached the endpoint within "
                f"{within}s; their deliveries: "
                f"{[log.get(event_id, 'none') for event_id in sorted(missing)[:5]]}"
            )
        await asyncio.sleep(0.2)


async def _log_settled(api: PublicApi, endpoint_id: str, *, within: float) -> list[dict[str, Any]]:
    """The delivery log once nothing in it is pending. A delivery that reached the endpoint
    just before a kill, but whose outcome was never recorded, is pending until its lease runs
    out and it is sent again."""
    deadline = time.monotonic() + within
    while True:
        log = await _delivery_log(api, endpoint_id)
        if all(d["status"] != "pending" for d in log) or time.monotonic() > deadline:
            return log
        await asyncio.sleep(0.5)


def _arrival_problems(
    arrivals: list[Received], prefix: str, events: dict[str, TimelineEvent]
) -> list[str]:
    """Each arrival is a timeline event, under its own event id, with the SSE data as body;
    arrivals of one webhook-id all carry the same body."""
    problems = []
    bodies: dict[str, set[bytes]] = defaultdict(set)
    for arrival in arrivals:
        if arrival.path != prefix:
            problems.append(f"a request to {arrival.path}")
            continue
        webhook_id = arrival.headers.get("webhook-id", "")
        bodies[webhook_id].add(arrival.body)
        body = arrival.json()
        if body.get("event_id") != webhook_id:
            problems.append(f"{webhook_id}: the body of event {body.get('event_id')}")
        if webhook_id not in events:
            problems.append(f"{webhook_id}: {body.get('type')} is in no timeline")
        elif body != events[webhook_id].data:
            problems.append(f"{webhook_id}: body {body} != SSE data {events[webhook_id].data}")
    problems += [
        f"{webhook_id}: {len(different)} different bodies"
        for webhook_id, different in bodies.items()
        if len(different) > 1
    ]
    return problems


@pytest.mark.timeout(480)
async def test_webhook_worker_killed_delivers_every_event_at_least_once(
    fault_stack: RunningStack, api: PublicApi
) -> None:
    prefix = f"/ok/{TENANT}"
    least = TASKS * EVENTS_PER_TASK
    tripwire = KillOnArrival(fault_stack, [int(least * share) for share in KILL_AT])
    async with serve_receiver() as hooks:
        hooks.received = tripwire
        endpoint = await _register(api, hooks.url + prefix)
        signatures = Signatures(hooks, endpoint["secret"])
        checking = asyncio.create_task(signatures.keep_checking())
        started, started_wall = time.monotonic(), time.time()
        restarts = asyncio.create_task(_restarts(fault_stack, tripwire, len(KILL_AT)))
        try:
            task_ids = await submit_many(api, [PROMPT.format(n=n) for n in range(TASKS)])
            terminal = await all_terminal(
                api, task_ids, within=300, explain=lambda ids: diagnose(fault_stack, ids)
            )
            await asyncio.wait_for(restarts, timeout=180)  # the notifier is back for good
            timelines = await _timelines(api, task_ids)
            events = {e.data["event_id"]: e for tl in timelines.values() for e in tl}
            await _every_event_arrived(
                api, hooks, endpoint["id"], prefix, set(events), within=LEASE_SECONDS + 60
            )
            log = await _log_settled(api, endpoint["id"], within=LEASE_SECONDS + 30)
            arrivals = list(hooks.received)
            signatures.check_new()
        finally:
            restarts.cancel()
            checking.cancel()

    problems = [p for task_id, tl in timelines.items() for p in timeline_problems(task_id, tl)]
    problems += signatures.problems
    problems += _arrival_problems(arrivals, prefix, events)
    per_event = Counter(a.headers.get("webhook-id") for a in arrivals)
    statuses = Counter(d["status"] for d in log)
    logged = Counter(d["event_id"] for d in log)
    if logged != Counter(list(events)):  # one delivery per event (one endpoint)
        problems.append(
            f"the log holds {len(log)} deliveries of {len(logged)} events for "
            f"{len(events)} timeline events"
        )

    kills = tripwire.kills
    first: dict[str, float] = {}
    for arrival in arrivals:
        webhook_id = arrival.headers.get("webhook-id", "")
        first[webhook_id] = min(arrival.at, first.get(webhook_id, arrival.at))
    delivered = max(first.get(event_id, float("inf")) for event_id in events)

    def again(kill: Kill) -> list[Received]:
        """Arrivals of the cut request's event after the kill: its redelivery."""
        cut_id = kill.cut.headers.get("webhook-id")
        return [a for a in arrivals if a.headers.get("webhook-id") == cut_id and a.at > kill.at]

    figures = {
        "tasks": TASKS,
        "timeline_events": len(events),
        "arrivals": len(arrivals),
        "duplicates": len(arrivals) - len(per_event),
        "events_delivered_more_than_once": sum(1 for n in per_event.values() if n > 1),
        "kills": [
            {
                "arrivals_before": kill.arrivals_before,
                "seconds_to_ready_again": round(kill.ready_at - kill.at, 1),
                "seconds_to_next_arrival": round(
                    min((a.at for a in arrivals if a.at > kill.at), default=kill.at) - kill.at, 1
                ),
                "seconds_to_redeliver_the_cut_attempt": round(
                    min((a.at for a in again(kill)), default=kill.at) - kill.at, 1
                ),
                "cut_delivery_in_the_log": {
                    key: value
                    for d in log
                    if d["event_id"] == kill.cut.headers.get("webhook-id")
                    for key, value in d.items()
                    if key in {"status", "attempts"}
                },
            }
            for kill in kills
        ],
        "events_first_delivered_after_last_kill": sum(
            1 for event_id in events if first.get(event_id, 0) > kills[-1].at
        ),
        "seconds_to_all_terminal": round(terminal - started, 1),
        "seconds_to_full_delivery": round(delivered - started_wall, 1),
        "seconds_to_full_delivery_after_last_kill": round(delivered - kills[-1].at, 1),
        "seconds_to_last_arrival_after_last_kill": round(
            max(a.at for a in arrivals) - kills[-1].at, 1
        ),
        "lease_seconds": LEASE_SECONDS,
        "delivery_log": dict(statuses),
    }
    print(json.dumps(figures, indent=2))
    record("webhook_kill", figures)

    assert len(kills) == len(KILL_AT)
    assert all(kill.arrivals_before < len(events) for kill in kills), "a kill after the flow"
    assert problems == [], "\n".join(problems[:30])
    assert set(per_event) == set(events)
    # each attempt the kills cut off came again, under the same webhook-id (and body: above)
    assert all(again(kill) for kill in kills), [k.cut.headers.get("webhook-id") for k in kills]
    assert dict(statuses) == {"succeeded": len(events)}, statuses
    assert len(events) >= least
