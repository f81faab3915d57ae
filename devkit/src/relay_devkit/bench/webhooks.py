"""Webhooks: deliveries per second and the latency a delivery adds (event → receiver), beside the
same events' arrival on SSE in the same run, and a burst beside an endpoint that hangs.

The receiver is ``relay_devkit.receiver`` in the bench's own event loop: ``/ok/...`` answers 204
at once, ``/hang/...`` never answers within the notifier's attempt timeout.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from notifier.settings import NotifierSettings
from relay_devkit.bench.common import Bench, submit
from relay_devkit.bench.procstat import cpu_seconds, environ
from relay_devkit.bench.report import Section, ms, table
from relay_devkit.bench.sse import Followed, follow
from relay_devkit.bench.stats import Latency, ratio
from relay_devkit.receiver import Received, Receiver, serve_receiver

PROMPT = "/steps 1"  # task.submitted, started, progressed, artifact.published, succeeded
SUBMITTING = 20  # tasks submitted at a time, as in the AWS-and-CPU scenario
HEALTHY = "/ok/bench"
HANGING = "/hang/bench"
WITHIN = 60.0  # seconds the deliveries of one phase may take to arrive
SETTLE = 2.0  # seconds after a phase: its last outcomes recorded and exported, consumers idle
# The notifier's histogram of each attempt's POST (connect, send, answer), in its metrics file.
ATTEMPT_METRIC = "relay.webhooks.attempt.duration"
# The notifier's delivery settings the method and the reading quote (RELAY_<NAME>).
DELIVERY_SETTINGS = (
    "webhooks_concurrency",
    "webhooks_endpoint_concurrency",
    "webhooks_timeout_seconds",
)


@dataclass(frozen=True)
class Hook:
    """One request the receiver recorded, read as the delivery of one timeline event."""

    event_id: str
    task_id: str | None
    occurred: float  # the body's occurred_at, time.time() scale
    at: float  # arrival at the receiver, time.time()


def occurred_at(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def hooks(received: Iterable[Received], prefix: str) -> list[Hook]:
    """The requests under ``prefix``, in arrival order, as deliveries."""
    out = []
    for request in received:
        if not request.path.startswith(prefix):
            continue
        body = request.json()
        out.append(
            Hook(
                event_id=str(body["event_id"]),
                task_id=body.get("task_id"),
                occurred=occurred_at(body["occurred_at"]),
                at=request.at,
            )
        )
    return out


def first_arrivals(delivered: Iterable[Hook]) -> dict[str, Hook]:
    """Each event's first delivery, by event id (the ``webhook-id``); later ones are at-least-once
    repeats."""
    first: dict[str, Hook] = {}
    for hook in delivered:
        if hook.event_id not in first or hook.at < first[hook.event_id].at:
            first[hook.event_id] = hook
    return first


@dataclass(frozen=True)
class SideBySide:
    """The same run's events on SSE and as webhooks, in seconds."""

    sse: list[float]  # occurred → SSE arrival, events that occurred after their stream opened
    webhook_same: list[float]  # occurred → receiver, those same events
    webhook_all: list[float]  # occurred → receiver, every timeline event delivered
    paired: list[float]  # webhook arrival - SSE arrival, event for event
    events: int  # timeline events seen on SSE (history and live)
    missing: int  # of those, never delivered


def side_by_side(followed: Sequence[Followed], delivered: Mapping[str, Hook]) -> SideBySide:
    """Match each event of the followed streams with its delivery by ``event_id``. SSE counts
    only events that occurred after the stream opened (earlier ones are history replayed on
    connect, mostly ``task.submitted``), and so does the like-for-like webhook figure."""
    sse, same, paired = [], [], []
    seen: set[str] = set()
    for stream in followed:
        for arrival in stream.arrivals:
            event_id = str(arrival.data["event_id"])
            seen.add(event_id)
            hook = delivered.get(event_id)
            if arrival.occurred < stream.opened:
                continue
            sse.append(arrival.received - arrival.occurred)
            if hook is not None:
                same.append(hook.at - hook.occurred)
                paired.append(hook.at - arrival.received)
    every = [delivered[e].at - delivered[e].occurred for e in seen if e in delivered]
    return SideBySide(
        sse=sse,
        webhook_same=same,
        webhook_all=every,
        paired=paired,
        events=len(seen),
        missing=len(seen - delivered.keys()),
    )


@dataclass(frozen=True)
class Attempts:
    """Successful attempts' POSTs, from the notifier's cumulative histogram: total seconds and
    how many."""

    seconds: float = 0.0
    count: int = 0

    def __sub__(self, before: Attempts) -> Attempts:
        return Attempts(self.seconds - before.seconds, self.count - before.count)

    @property
    def mean(self) -> float:
        return self.seconds / self.count if self.count > 0 else math.nan


@dataclass(frozen=True)
class Throughput:
    """Deliveries to the healthy endpoint over one phase."""

    label: str
    expected: int  # deliveries the phase should bring
    requests: int  # requests that arrived (repeats included)
    events: int  # distinct events among them
    began: float  # time.time(): the phase's start (a replay's request, or the first arrival)
    last: float  # time.time(): the last arrival
    cpu: float = math.nan  # the notifier's CPU seconds over the phase
    hanging: int | None = None  # requests the hanging endpoint received meanwhile
    attempts: Attempts = Attempts()  # the phase's successful POSTs

    @property
    def seconds(self) -> float:
        return self.last - self.began

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else math.nan

    @property
    def cpu_ms_per_delivery(self) -> float:
        return ms(self.cpu) / self.requests if self.requests else math.nan

    @property
    def in_flight(self) -> float:
        """POSTs in flight on average (Little's law: requests per second x mean POST time)."""
        return rate(self.requests, self.began, self.last) * self.attempts.mean

    @classmethod
    def of(
        cls, label: str, expected: int, delivered: Sequence[Hook], began: float | None = None
    ) -> Throughput:
        """From ``began`` (else the first arrival) to the last arrival."""
        arrivals = [h.at for h in delivered]
        first = min(arrivals, default=math.nan)
        return cls(
            label=label,
            expected=expected,
            requests=len(delivered),
            events=len({h.event_id for h in delivered}),
            began=first if began is None else began,
            last=max(arrivals, default=math.nan),
        )


def rate(count: int, first: float, last: float) -> float:
    """``count`` per second between two instants; NaN for no time between them."""
    seconds = last - first
    return count / seconds if seconds > 0 else math.nan


def sse_rate(followed: Sequence[Followed]) -> float:
    """Timeline events per second on the SSE streams, from the first arrival to the last: each
    event once, as each task has one follower (history arrives when its stream opens)."""
    arrivals = [a.received for f in followed for a in f.arrivals]
    return rate(len(arrivals), min(arrivals, default=math.nan), max(arrivals, default=math.nan))


def attempts_in(export: dict[str, Any]) -> Attempts | None:
    """The successful attempts in one metrics export; None if it does not hold the histogram."""
    for resource in export.get("resource_metrics", []):
        for scope in resource.get("scope_metrics", []):
            for metric in scope.get("metrics", []):
                if metric.get("name") != ATTEMPT_METRIC:
                    continue
                points = metric.get("data", {}).get("data_points", [])
                succeeded = [
                    p for p in points if (p.get("attributes") or {}).get("outcome") == "succeeded"
                ]
                return Attempts(
                    sum(float(p.get("sum", 0)) for p in succeeded),
                    sum(int(p.get("count", 0)) for p in succeeded),
                )
    return None


def latest_attempts(path: Path) -> Attempts:
    """The last export in a metrics file that holds the histogram (a torn line is skipped);
    none yet, or no file (telemetry sent elsewhere), is zero."""
    if not path.exists():
        return Attempts()
    for line in reversed(path.read_text(encoding="utf-8").splitlines()):
        try:
            found = attempts_in(json.loads(line))
        except (ValueError, TypeError, AttributeError):
            continue
        if found is not None:
            return found
    return Attempts()


async def until(done: Callable[[], bool], within: float) -> bool:
    """Poll ``done`` every 50 ms until it holds (True) or ``within`` seconds pass (False)."""
    deadline = time.monotonic() + within
    while not done():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def delivery_settings(env: Mapping[str, str]) -> dict[str, float]:
    """The notifier's delivery bounds, from its environment ``env``, else each setting's
    default."""
    fields = NotifierSettings.model_fields
    return {
        name: float(env.get(f"RELAY_{name.upper()}") or fields[name].default)
        for name in DELIVERY_SETTINGS
    }


async def _register(session: aiohttp.ClientSession, url: str) -> str:
    body = {"url": url, "event_types": ["*"], "description": "make bench"}
    async with session.post("/v1/webhooks", json=body) as response:
        created = await response.json()
        if response.status != 201:
            raise RuntimeError(f"POST /v1/webhooks answered {response.status}: {created}")
    return str(created["id"])


async def _replay(session: aiohttp.ClientSession, endpoint: str, since: float) -> int:
    body = {"since": datetime.fromtimestamp(since, UTC).isoformat()}
    async with session.post(f"/v1/webhooks/{endpoint}/replay", json=body) as response:
        queued = await response.json()
        if response.status != 202:
            raise RuntimeError(f"replay answered {response.status}: {queued}")
    return int(queued["queued"])


async def _remove(session: aiohttp.ClientSession, endpoint: str) -> None:
    """Delete an endpoint (its pending deliveries go with it), so the scenarios after this one
    pay nothing for it; a failure is reported, not raised over the scenario's own error."""
    try:
        async with session.delete(f"/v1/webhooks/{endpoint}") as response:
            if response.status not in (204, 404):
                print(f"  webhooks: deleting {endpoint} answered {response.status}", flush=True)
    except aiohttp.ClientError as exc:
        print(f"  webhooks: deleting {endpoint} failed: {exc}", flush=True)


async def _live(
    session: aiohttp.ClientSession, tasks: int
) -> tuple[float, set[str], list[Followed]]:
    """Submit ``tasks`` tasks, ``SUBMITTING`` at a time, each followed on SSE to its end."""
    gate = asyncio.Semaphore(SUBMITTING)

    async def one() -> tuple[str, Followed]:
        async with gate:
            task_id, _ = await submit(session, PROMPT)
        return task_id, await follow(session, f"/v1/tasks/{task_id}/events")

    began = time.time()
    runs = await asyncio.gather(*(one() for _ in range(tasks)))
    return began, {task_id for task_id, _ in runs}, [followed for _, followed in runs]


async def _burst(
    bench: Bench,
    session: aiohttp.ClientSession,
    receiver: Receiver,
    *,
    label: str,
    healthy: str,
    since: float,
    hanging: str | None = None,
) -> Throughput:
    """Replay every event since ``since`` to the healthy endpoint (after the hanging one, when
    given, so that its attempts are under way first) and time the healthy one's deliveries from
    the replay's request to the last arrival."""
    mark = len(receiver.received)
    if hanging is not None:
        await _replay(session, hanging, since)
    cpu0 = cpu_seconds(bench.stack.pid("notifier"))
    began = time.time()
    queued = await _replay(session, healthy, since)

    def arrived() -> list[Hook]:
        return hooks(receiver.received[mark:], HEALTHY)

    await until(lambda: len(arrived()) >= queued, WITHIN)
    cpu = cpu_seconds(bench.stack.pid("notifier")) - cpu0
    held = None if hanging is None else len(receiver.at(HANGING))
    return replace(Throughput.of(label, queued, arrived(), began), cpu=cpu, hanging=held)


@dataclass(frozen=True)
class Measured:
    """What one run of the scenario collected."""

    tasks: int
    compared: SideBySide
    sse_per_second: float  # timeline events on the streams, first to last arrival
    live: Throughput
    alone: Throughput
    beside: Throughput


async def _measure(bench: Bench, tasks: int) -> Measured:
    """The live phase, then the burst alone and the burst beside a hanging endpoint, each
    followed by ``SETTLE`` seconds; both endpoints are deleted at the end, whatever happened."""
    metrics = bench.stack.config.telemetry_dir / "notifier.metrics.jsonl"

    async def settled(phase: Throughput, before: Attempts) -> tuple[Throughput, Attempts]:
        """The phase with its POSTs, once their outcomes are recorded and exported (every
        second in the bench); and the totals the next phase starts from."""
        await asyncio.sleep(SETTLE)
        after = latest_attempts(metrics)
        return replace(phase, attempts=after - before), after

    # a connection per request: the API calls between phases never reuse one a finished stream
    # left idle, which the gateway may close just as it is reused
    async with (
        serve_receiver() as receiver,
        bench.session(limit=tasks * 2, force_close=True) as session,
    ):
        registered: list[str] = []
        try:
            healthy = await _register(session, f"{receiver.url}{HEALTHY}")
            registered.append(healthy)
            totals = latest_attempts(metrics)
            cpu0 = cpu_seconds(bench.stack.pid("notifier"))
            began, task_ids, followed = await _live(session, tasks)
            expected = {str(a.data["event_id"]) for f in followed for a in f.arrivals}

            def mine() -> list[Hook]:
                return [h for h in hooks(receiver.received, HEALTHY) if h.task_id in task_ids]

            await until(lambda: expected <= first_arrivals(mine()).keys(), WITHIN)
            label = f"live: {tasks} tasks, first → last arrival"
            live = replace(
                Throughput.of(label, len(expected), mine()),
                cpu=cpu_seconds(bench.stack.pid("notifier")) - cpu0,
            )
            compared = side_by_side(followed, first_arrivals(mine()))
            live, totals = await settled(live, totals)
            alone, totals = await settled(
                await _burst(
                    bench,
                    session,
                    receiver,
                    label="burst: replay of the run's events",
                    healthy=healthy,
                    since=began,
                ),
                totals,
            )
            hanging = await _register(session, f"{receiver.url}{HANGING}")
            registered.append(hanging)
            beside, totals = await settled(
                await _burst(
                    bench,
                    session,
                    receiver,
                    label="the same burst, beside an endpoint that hangs",
                    healthy=healthy,
                    since=began,
                    hanging=hanging,
                ),
                totals,
            )
        finally:
            for endpoint in registered:
                await _remove(session, endpoint)
    return Measured(tasks, compared, sse_rate(followed), live, alone, beside)


async def webhooks(bench: Bench) -> Section:
    bounds = delivery_settings(environ(bench.stack.pid("notifier")))
    measured = await _measure(bench, 40 if bench.quick else 100)
    return _section(measured, bounds)


def _section(measured: Measured, bounds: Mapping[str, float]) -> Section:
    per_endpoint = int(bounds["webhooks_endpoint_concurrency"])
    compared, live, alone, beside = (
        measured.compared,
        measured.live,
        measured.alone,
        measured.beside,
    )
    section = Section(
        "Webhooks: deliveries per second and the latency they add, beside SSE",
        f'One endpoint for the bench\'s tenant (`event_types: ["*"]`) on a receiver in the '
        "bench process (`relay_devkit.receiver`: its `/ok/...` answers 204 at once and records "
        f"each request's arrival). {measured.tasks} tasks (`{PROMPT}`: five timeline events "
        f"each) submitted {SUBMITTING} at a time, each followed on "
        "`GET /v1/tasks/{id}/events` from its submit to its end. Webhook latency is each "
        "event's `occurred_at` (from the delivered body) → its first arrival at the receiver; "
        "SSE latency is the same event's `occurred_at` → its arrival on the task's stream, "
        "counted, as in fan-out, only for events that occurred after the stream opened "
        "(`task.submitted` is mostly history there); 'webhook - SSE' pairs the two arrivals "
        "of one event by `event_id`. Deliveries per second: live, from the first arrival to "
        "the last, which follows how fast the pipeline appends events; then a burst, a replay "
        "(`POST /v1/webhooks/{id}/replay` with `since` the run's start) queueing all of the "
        "run's events at once, timed from the request to the last arrival: the delivery "
        "worker's own pace, with the notifier's settings of this run "
        f"(RELAY_WEBHOOKS_CONCURRENCY={bounds['webhooks_concurrency']:g} attempts at once, "
        f"RELAY_WEBHOOKS_ENDPOINT_CONCURRENCY={per_endpoint} to one endpoint, "
        f"RELAY_WEBHOOKS_TIMEOUT_SECONDS={bounds['webhooks_timeout_seconds']:g}). Isolation: "
        "the same burst again while a second endpoint of the tenant, on `/hang/...` (never "
        "answers within the timeout), has a replay of the same events queued just before. "
        "Baselines: SSE in the same run for latency, the burst alone for isolation. POST "
        f"time is the mean of the notifier's `{ATTEMPT_METRIC}` (successful attempts: "
        "connect, send, answer) over the phase, from its metrics file; POSTs in flight are "
        "deliveries/s x that mean. Notifier CPU is utime+stime from /proc over each phase "
        "(live: everything it did, timelines and streams too), per delivery. Each phase is "
        f"followed by {SETTLE:g} s of quiet. Both endpoints are deleted afterwards.",
    )
    section.body.append(
        table(
            ["", "events", "p50 ms", "p99 ms", "max ms"],
            [
                _latency_row("SSE: occurred → arrival (live events)", compared.sse),
                _latency_row("webhook: occurred → receiver (same events)", compared.webhook_same),
                _latency_row("webhook: occurred → receiver (every event)", compared.webhook_all),
                _latency_row("webhook arrival - SSE arrival (same event)", compared.paired),
            ],
        )
    )
    section.body.append(
        table(
            [
                "phase",
                "deliveries",
                "repeats",
                "s",
                "deliveries/s",
                "/ burst alone",
                "POST mean ms",
                "POSTs in flight",
                "notifier CPU ms per delivery",
                "hanging endpoint: requests",
            ],
            [
                [
                    phase.label,
                    phase.events,
                    phase.requests - phase.events,
                    phase.seconds,
                    phase.per_second,
                    ratio(phase.per_second, alone.per_second) if n else None,
                    ms(phase.attempts.mean),
                    phase.in_flight,
                    phase.cpu_ms_per_delivery,
                    phase.hanging,
                ]
                for n, phase in enumerate((live, alone, beside))
            ],
        )
    )
    notes = [
        f"Over the live phase the SSE streams received {measured.sse_per_second:.1f} events/s "
        "(first to last arrival, history included)."
    ]
    if compared.missing:
        notes.append(
            f"{compared.missing} of {compared.events} timeline events were not delivered "
            f"within {WITHIN:.0f} s."
        )
    notes += [
        f"{p.label}: {p.events} of {p.expected} queued deliveries arrived within {WITHIN:.0f} s."
        for p in (alone, beside)
        if p.events < p.expected
    ]
    section.body.append(" ".join(notes))
    section.reading = _reading(measured, per_endpoint)
    return section


def _latency_row(label: str, seconds: Sequence[float]) -> list[Any]:
    summary = Latency.of(seconds)
    return [label, summary.count, ms(summary.p50), ms(summary.p99), ms(summary.max)]


def _reading(measured: Measured, per_endpoint: int) -> str:
    compared, live, alone, beside = (
        measured.compared,
        measured.live,
        measured.alone,
        measured.beside,
    )
    sse, hook = Latency.of(compared.sse), Latency.of(compared.webhook_same)
    paired = Latency.of(compared.paired)
    side = "after" if paired.p50 >= 0 else "before"
    text = (
        "After the commit that appends an event, SSE and webhooks part: SSE goes through a "
        "Redis publish, the notifier's stream and the gateway's relay; the delivery, inserted "
        "in that same commit, waits for the notifier's worker (woken by the append in its own "
        "process) to claim it in a transaction, sign it, POST it straight to the receiver and "
        "record the outcome. Event for event the webhook arrived "
        f"{abs(ms(paired.p50)):.1f} ms {side} SSE at p50 (p99 {ms(paired.p99):+.0f} ms): "
        f"occurred → receiver p50 {ms(hook.p50):.0f} ms (p99 {ms(hook.p99):.0f}) against "
        f"{ms(sse.p50):.0f} ms (p99 {ms(sse.p99):.0f}) on SSE. Live, deliveries came at "
        f"{live.per_second:.1f}/s (first to last arrival) while the streams received "
        f"{measured.sse_per_second:.1f} events/s"
    )
    if abs(ratio(live.per_second, measured.sse_per_second) - 1) <= 0.25:
        text += ": both follow the pace at which the pipeline appends events"
        if alone.per_second > 1.5 * live.per_second:
            text += ", well under the worker's own"
    text += (
        f". Queued all at once, {alone.events} deliveries went at {alone.per_second:.0f}/s, "
        f"{alone.cpu_ms_per_delivery:.1f} ms of notifier CPU each"
    )
    if alone.attempts.count:
        text += (
            f"; the POST itself took {ms(alone.attempts.mean):.1f} ms on average, so "
            f"{alone.in_flight:.1f} were in flight of the {per_endpoint} one endpoint may have"
        )
        if alone.in_flight >= 0.8 * per_endpoint:
            text += ": that bound and the receiver's answers paced the burst"
        else:
            text += (
                ": the rest of each slot's time is the worker's own (signing, recording the "
                "outcome, claiming the next ones, on the notifier's one event loop)"
            )
    text += ", on two cores shared with the receiver, the bench's client and every service."
    if beside.hanging is not None:
        kept = ratio(beside.per_second, alone.per_second)
        text += (
            f" Beside an endpoint that hangs, the healthy one got {beside.per_second:.0f}/s "
            f"({kept:.2f}x alone) while the hanging one was sent {beside.hanging} requests"
        )
        if beside.hanging <= per_endpoint:
            text += f", within its bound of {per_endpoint} attempts at once."
        else:
            text += (
                f", more than its bound of {per_endpoint} at once: attempts that timed out "
                "were retried during the burst."
            )
    return text
