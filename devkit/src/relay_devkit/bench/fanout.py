"""4. Fan-out: N concurrent followers of one task on one gateway and notifier, over SSE and over
WebSocket, and over WebSocket straight to the notifier: the same-run baseline that shows what
relaying each client's connection through the gateway costs."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import math
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from relay_devkit.bench.common import MIB, Bench, profiled_from, rss_peaks, submit
from relay_devkit.bench.procstat import cpu_seconds, environ, open_files_limit
from relay_devkit.bench.report import Section, ms, table
from relay_devkit.bench.sse import Followed, follow
from relay_devkit.bench.stats import Latency, ratio
from relay_devkit.bench.ws import follow_ws, ws_url
from relay_shared.internal_auth import TokenIssuer

CONNECTING = 50  # followers connecting at a time: they arrive in a quick ramp, not one burst
PROGRAMS = ("gateway", "notifier")  # whose memory is measured
FOLLOWERS = "followers"  # this process, as a program whose CPU is measured
WITHIN = 120  # seconds a follower may take, connecting included
# A consumer's long poll lasts up to RELAY_CONSUMER_WAIT_SECONDS (20 s by default); plus margin.
ABANDONED_POLL_SECONDS = 22.0
# --profile: the top level from the moment every stream is open (where CPU per delivery is
# measured), most of the ~23 s its task then runs
PROFILE_SECONDS = 20.0

# How one follower of a task starts: (session, task id, set once the stream is open) → its events
Start = Callable[[aiohttp.ClientSession, str, asyncio.Event], Coroutine[Any, Any, Followed]]
Follower = Callable[[asyncio.Event], Coroutine[Any, Any, Followed]]  # Start, for one task


@dataclass
class Level:
    """One level of one path: N followers of one task, all open together."""

    connections: int
    followed: list[Followed]
    errors: Counter[str]
    all_open_after: float  # seconds from submit to the last stream's opening
    peaks: dict[str, float]  # program → peak RSS, MiB
    starts: list[float] = field(default_factory=list)  # seconds from submit, each follower's
    # each live event's arrival at each follower minus its arrival at a probe on another path
    paired: list[float] = field(default_factory=list)
    steady: SteadyCpu | None = None  # CPU from the moment every stream was open to the end

    @property
    def steady_deliveries(self) -> int:
        """Events that reached a follower once every stream was open (the steady window)."""
        if self.steady is None:
            return 0
        return sum(1 for f in self.followed for a in f.arrivals if a.received >= self.steady.since)

    def cpu_per_delivery(self, program: str) -> float:
        """CPU seconds ``program`` spent per event delivered to one follower in the steady
        window: what one more follower of an event costs it; NaN when nothing was measured."""
        deliveries = self.steady_deliveries
        if self.steady is None or not deliveries:
            return math.nan
        return self.steady.cpu[program] / deliveries

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    @property
    def lag(self) -> Latency:
        return Latency.of([lag for f in self.followed for lag in f.live_lags()])

    @property
    def steady_lag(self) -> Latency:
        """Lag of the events that occurred once every stream was open: delivery alone, with
        no follower still connecting (each reads the history and opens a connection upstream)."""
        all_open = max((f.opened for f in self.followed), default=0.0)
        return Latency.of(
            [
                a.received - a.occurred
                for f in self.followed
                for a in f.arrivals
                if a.occurred >= all_open
            ]
        )


@dataclass
class Series:
    """One way of following a task (SSE, WebSocket, ...), and its levels once run."""

    label: str
    start: Start
    levels: list[Level] = field(default_factory=list)

    def kib_per_connection(self, program: str) -> float:
        first, last = self.levels[0], self.levels[-1]
        return kib_per_connection(
            (first.connections, first.peaks[program]), (last.connections, last.peaks[program])
        )


def kib_per_connection(first: tuple[int, float], last: tuple[int, float]) -> float:
    """What each added connection cost: the growth of peak RSS (MiB) between two levels of
    (connections, peak), per added connection, in KiB; NaN without added connections."""
    added = last[0] - first[0]
    return (last[1] - first[1]) * 1024 / added if added > 0 else math.nan


def paired_delays(followed: Sequence[Followed], probe: Followed) -> list[float]:
    """How much later each follower got each live event than ``probe``, a follower of the same
    task on another path: one difference per (follower, event) that was live for both."""
    at = {a.data["seq"]: a.received for a in probe.arrivals if a.occurred >= probe.opened}
    return [
        a.received - at[a.data["seq"]]
        for f in followed
        for a in f.arrivals
        if a.occurred >= f.opened and a.data["seq"] in at
    ]


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No garbage collection in this process (the followers') while the block runs, all of it
    after. A full collection walks every arrival recorded so far and pauses the process for
    100-400 ms, which every follower would report as Relay's lag."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


@dataclass(frozen=True)
class SteadyCpu:
    since: float  # time.time() when the last follower's stream opened
    cpu: dict[str, float]  # program → CPU seconds from then to the level's end


class OpenWatch:
    """Tells when every follower of a level is open (or has failed before opening)."""

    def __init__(self, followers: int) -> None:
        self._left = followers
        self.everyone = asyncio.Event()
        if followers <= 0:
            self.everyone.set()

    def _one(self) -> None:
        self._left -= 1
        if self._left <= 0:
            self.everyone.set()

    def watching(self, start: Follower) -> Follower:
        """``start``, counted once when its stream opens, or when it ends without opening."""

        async def follower(opened: asyncio.Event) -> Followed:
            waiting = asyncio.create_task(opened.wait())
            waiting.add_done_callback(lambda done: None if done.cancelled() else self._one())
            try:
                return await start(opened)
            finally:
                if not waiting.done():
                    waiting.cancel()  # ended before its stream opened
                    self._one()

        return follower


@contextlib.asynccontextmanager
async def steady_cpu(
    pids: Mapping[str, int], everyone: asyncio.Event
) -> AsyncIterator[list[SteadyCpu]]:
    """CPU of each process from the moment ``everyone`` is set until the block ends; the list
    holds the one measurement, or nothing when the block ended first."""
    measured: list[SteadyCpu] = []
    began: list[tuple[float, dict[str, float]]] = []

    async def mark() -> None:
        await everyone.wait()
        began.append((time.time(), {p: cpu_seconds(pid) for p, pid in pids.items()}))

    marking = asyncio.create_task(mark())
    try:
        yield measured
    finally:
        marking.cancel()
        if began:
            since, cpu0 = began[0]
            measured.append(
                SteadyCpu(since, {p: cpu_seconds(pid) - cpu0[p] for p, pid in pids.items()})
            )


def _why(failure: BaseException) -> str:
    status = getattr(failure, "status", None) or str(failure)[:80]
    return f"{type(failure).__name__} ({status})"


async def _ramped(start: Follower, connecting: asyncio.Semaphore, starts: list[float]) -> Followed:
    """Start a follower (noting when in ``starts``); the next follower waiting on ``connecting``
    goes once this one's stream is open (or has failed)."""
    opened = asyncio.Event()
    await connecting.acquire()
    starts.append(time.time())
    stream = asyncio.create_task(start(opened))
    waiting = asyncio.create_task(opened.wait())
    try:
        await asyncio.wait([stream, waiting], return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
        connecting.release()
    return await stream


async def _scheduled(start: Follower, at: float) -> Followed:
    """Start a follower at ``at`` (time.time()), however the ones before it are doing."""
    await asyncio.sleep(max(0.0, at - time.time()))
    return await start(asyncio.Event())


def _prompt(followers: int) -> str:
    return f"/steps {10 + followers // 50}\n/sleep 1"


async def _restart(bench: Bench) -> None:
    """Fresh gateway and notifier processes (the stack's supervisor starts them again), so each
    path's memory grows from the same state, not from what the path before left behind."""
    stopped = time.monotonic()
    for program in ("notifier", "gateway"):
        old = bench.stack.kill(program, signal.SIGTERM)
        await asyncio.to_thread(bench.stack.wait_restarted, program, old)
    # The stopped notifier's last SQS long poll outlives it (moto, like SQS, does not notice
    # the client has gone): a message landing in it stays invisible for the visibility timeout
    # (60 s), and that task's timeline stalls until it comes back. Let the poll run out first.
    await asyncio.sleep(max(0.0, stopped + ABANDONED_POLL_SECONDS - time.monotonic()))


async def _run(
    bench: Bench,
    series: Series,
    levels: Sequence[int],
    *,
    paced_by: Series | None = None,
    probe: Start | None = None,
    profile_as: str | None = None,
) -> None:
    """Each level on its own task; followers come in the ramp, or, ``paced_by`` another series,
    each when its counterpart there started (the same arrival schedule). A ``probe``, one more
    follower on another path opened before the others, gives each level's paired delays. With
    ``--profile``, ``profile_as`` names the flame graphs of the top level (gateway, notifier
    and the followers' own process, over PROFILE_SECONDS once every stream is open)."""
    series_began = time.monotonic()
    await _restart(bench)
    for level in levels:
        # each follower on its own connection, as separate clients would be
        async with bench.session(limit=0, force_close=True) as session:
            # long enough for every follower to be connected for most of the task's events
            task_id, began = await submit(session, _prompt(level))
            watch = OpenWatch(level)
            start = watch.watching(functools.partial(series.start, session, task_id))
            probing: asyncio.Task[Followed] | None = None
            if probe is not None:
                probe_open = asyncio.Event()
                probing = asyncio.create_task(probe(session, task_id, probe_open))
                waiting = asyncio.create_task(probe_open.wait())
                await asyncio.wait([probing, waiting], return_when=asyncio.FIRST_COMPLETED)
                waiting.cancel()
            starts: list[float] = []
            if paced_by is not None:
                pace = next(lv for lv in paced_by.levels if lv.connections == level).starts
                starts = [began + offset for offset in pace]
                followers = [_scheduled(start, at) for at in starts]
            else:
                connecting = asyncio.Semaphore(CONNECTING)
                followers = [_ramped(start, connecting, starts) for _ in range(level)]
            top = profile_as is not None and level == max(levels)
            sampling = (PROGRAMS, PROFILE_SECONDS) if top else ((), 0.0)
            async with (
                profiled_from(bench, watch.everyone, profile_as or "", *sampling, client=top),
                rss_peaks(bench, PROGRAMS) as peaks,
                steady_cpu(_cpu_pids(bench), watch.everyone) as steady,
            ):
                with collector_paused():
                    results = await asyncio.gather(*followers, return_exceptions=True)
                    probed = await asyncio.gather(
                        *([probing] if probing else []), return_exceptions=True
                    )
        followed = [r for r in results if isinstance(r, Followed)]
        paired = [d for p in probed if isinstance(p, Followed) for d in paired_delays(followed, p)]
        errors = Counter(_why(r) for r in results if not isinstance(r, Followed))
        errors.update(f"probe {_why(p)}" for p in probed if not isinstance(p, Followed))
        series.levels.append(
            Level(
                connections=level,
                followed=followed,
                errors=errors,
                all_open_after=max((f.opened for f in followed), default=began) - began,
                peaks={p: peaks[p] / MIB for p in PROGRAMS},
                starts=sorted(at - began for at in starts),
                paired=paired,
                steady=steady[0] if steady else None,
            )
        )
    print(f"  fanout, {series.label}: {time.monotonic() - series_began:.0f} s", flush=True)


def _cpu_pids(bench: Bench) -> dict[str, int]:
    return {**{p: bench.stack.pid(p) for p in PROGRAMS}, FOLLOWERS: os.getpid()}


def _paths(bench: Bench) -> tuple[Series, Series, Series]:
    async def sse(session: aiohttp.ClientSession, task_id: str, opened: asyncio.Event) -> Followed:
        url = f"/v1/tasks/{task_id}/events"
        return await follow(session, url, within=WITHIN, opened=opened)

    gateway_ws = ws_url(bench.url, "/v1/ws")

    async def relayed(_: aiohttp.ClientSession, task_id: str, opened: asyncio.Event) -> Followed:
        return await follow_ws(
            gateway_ws, task_id, headers=bench.headers, within=WITHIN, opened=opened
        )

    # The notifier trusts tokens the gateway signs; the stack hands the signing key to the
    # gateway process alone (relay_ops.stack.environment), so it is read from there.
    signing_key = environ(bench.stack.pid("gateway"))["RELAY_INTERNAL_AUTH_PRIVATE_KEY"]
    issuer = TokenIssuer(signing_key)
    notifier_ws = ws_url(bench.stack.config.url("notifier"), "/internal/ws")

    async def direct(_: aiohttp.ClientSession, task_id: str, opened: asyncio.Event) -> Followed:
        headers = issuer.headers(audience="notifier", tenant_id=bench.tenant)
        return await follow_ws(notifier_ws, task_id, headers=headers, within=WITHIN, opened=opened)

    return (
        Series("SSE via gateway", sse),
        Series("WebSocket via gateway", relayed),
        Series("WebSocket direct to notifier", direct),
    )


def _row(series: Series, level: Level, *, label: bool) -> list[Any]:
    summary = level.lag
    return [
        *([series.label] if label else []),
        level.connections,
        len(level.followed),
        level.failed,
        summary.count,
        ms(summary.p50),
        ms(summary.p99),
        ms(level.steady_lag.p99),
        ratio(summary.p50, series.levels[0].lag.p50),
        level.all_open_after,
        level.peaks["gateway"],
        level.peaks["notifier"],
    ]


COLUMNS = [
    "deliveries",
    "lag p50 ms",
    "lag p99 ms",
    "lag p99 once all open ms",
    "p50 / 1 connection",
    "all open after s",
    "gateway RSS MiB",
    "notifier RSS MiB",
]


async def fan_out(bench: Bench) -> Section:
    sse_levels = [1, 50, 200] if bench.quick else [1, 100, 500, 1000]
    ws_levels = [1, 50, 200] if bench.quick else [1, 100, 1000]
    sse, relayed, direct = _paths(bench)
    await _run(bench, sse, sse_levels, profile_as="fanout-sse")
    await _run(bench, relayed, ws_levels, probe=direct.start, profile_as="fanout-ws")
    await _run(bench, direct, ws_levels, paced_by=relayed)
    limits = {p: open_files_limit(bench.stack.pid(p)) for p in PROGRAMS}

    section = Section(
        "Fan-out: concurrent SSE and WebSocket followers on one gateway and notifier",
        f"One task (`{' '.join(_prompt(1).splitlines())}`, ten more steps per 500 followers: "
        "an event about every second) followed by N clients on `GET /v1/tasks/{id}/events` "
        f"(aiohttp, one process; they connect {CONNECTING} at a time, each next one as soon "
        "as a stream opens, and then all stay open together; that process collects no garbage "
        "while a level runs, only between levels, since a full collection of what it has "
        "recorded would pause every follower at once). Lag is each event's "
        "`occurred_at` → its arrival at a follower, counted only for events that occurred "
        "after that follower's stream opened (earlier ones are history replayed on connect); "
        "'once all open' counts only the events that occurred after the last stream opened, "
        "when no follower is still connecting. "
        "RSS is each process's peak, sampled every 0.2 s. Baseline: one follower, in the "
        "same run.\n\n"
        "WebSocket: the same, with N clients (`websockets`, same process, same ramp), each "
        "on its own connection to `GET /v1/ws` (API key header), subscribed to the task with "
        "`after: 0`; a stream counts as open when its `subscribed` frame arrives. The "
        "gateway answers the protocol and every client's subscription is a share of its one "
        "subscription to the task on the notifier's `/internal/ws` (ADR 0026). Baseline for "
        "that choice: the same N clients straight to "
        "`/internal/ws` with an internal token signed as the gateway signs them, each "
        "starting when its counterpart through the gateway started, so the notifier sees the "
        "same arrivals and the difference is the gateway's part (left to the ramp, direct "
        "clients would arrive faster than the notifier's 10 database connections read their "
        "histories: another load). The relay's delay is paired: at each level through the "
        "gateway one more client follows the same task straight from the notifier (opened "
        "before the others), and each live event's arrival at each relayed follower minus "
        "its arrival at that client is the relay's delay for it. Before each of the three "
        "paths the gateway and notifier are restarted (and the stopped notifier's last SQS "
        "long poll is waited out), so each path's memory grows from the same state; memory "
        "per connection is the growth of peak RSS from 1 to N connections, over N - 1. Every "
        "follower has a connection of its own.",
    )
    headers = ["followers", "streams", "failed", *COLUMNS]
    section.body.append(table(headers, [_row(sse, level, label=False) for level in sse.levels]))
    ws_rows = [_row(p, level, label=True) for p in (relayed, direct) for level in p.levels]
    section.body.append(table(["path", "connections", "open", "failed", *COLUMNS], ws_rows))

    common = [n for n in ws_levels if n in sse_levels]
    side: list[list[Any]] = []
    for n in common:
        s, r, d = (
            next(lv for lv in p.levels if lv.connections == n) for p in (sse, relayed, direct)
        )
        relay = Latency.of(r.paired)
        side.append(
            [
                n,
                ms(s.lag.p50),
                ms(r.lag.p50),
                ms(d.lag.p50),
                ms(s.lag.p99),
                ms(r.lag.p99),
                ms(d.lag.p99),
                ms(relay.p50),
                ms(relay.p99),
            ]
        )
    section.body.append(
        table(
            [
                "connections",
                "SSE p50 ms",
                "WS p50 ms",
                "WS direct p50 ms",
                "SSE p99 ms",
                "WS p99 ms",
                "WS direct p99 ms",
                "relay's delay p50 ms",
                "relay's delay p99 ms",
            ],
            side,
        )
    )
    memory: list[list[Any]] = [
        [
            p.label,
            p.levels[-1].connections,
            p.kib_per_connection("gateway"),
            p.kib_per_connection("notifier"),
        ]
        for p in (sse, relayed, direct)
    ]
    section.body.append(
        table(
            ["path", "up to", "gateway KiB per connection", "notifier KiB per connection"],
            memory,
            digits=0,
        )
    )
    section.body.append(
        "CPU per delivery: each process's CPU from the moment the last stream of a level "
        "opened to the level's end, over the events delivered to followers meanwhile (one event"
        " to one follower is one delivery): what one more follower of an event costs each "
        "process, its write and the scheduling around it. The process's other work in the "
        "window (metrics export, consumers' polls) is in it too, which is why the figure is "
        "larger at 100 followers than at 1,000. The followers' own process (reading and parsing "
        "every stream) is on the same cores."
    )
    section.body.append(
        table(
            [
                "path",
                "connections",
                "deliveries once all open",
                "gateway µs per delivery",
                "notifier µs per delivery",
                "followers' process µs per delivery",
            ],
            [
                [
                    p.label,
                    lv.connections,
                    lv.steady_deliveries,
                    *(1e6 * lv.cpu_per_delivery(x) for x in (*PROGRAMS, FOLLOWERS)),
                ]
                for p in (sse, relayed, direct)
                for lv in p.levels
                if lv.connections > 1
            ],
            digits=0,
        )
    )
    errors = {
        p.label: sum((lv.errors for lv in p.levels), Counter[str]()) for p in (sse, relayed, direct)
    }
    failures = [
        f"{label}: " + ", ".join(f"{k} x{v}" for k, v in counts.items())
        for label, counts in errors.items()
        if counts
    ]
    if failures:
        section.body.append("Failed streams: " + "; ".join(failures) + ".")
    section.body.append(
        "Open-file limit (soft) of the services: "
        + ", ".join(f"{p} {'unlimited' if v is None else f'{v:,}'}" for p, v in limits.items())
        + "."
    )
    section.reading = _reading(sse, relayed, direct, sum(sum(c.values()) for c in errors.values()))
    return section


def _reading(sse: Series, relayed: Series, direct: Series, failed: int) -> str:
    first, last = sse.levels[0], sse.levels[-1]
    r, d = relayed.levels[-1], direct.levels[-1]
    relay, relay_one = Latency.of(r.paired), Latency.of(relayed.levels[0].paired)
    cores = os.cpu_count() or 1
    per_delivery = sum(last.cpu_per_delivery(x) for x in (*PROGRAMS, FOLLOWERS))
    spread = 1e3 * last.connections * per_delivery / cores
    text = (
        "An event reaches the notifier once, is published once on Redis and read once by the "
        "notifier's one shared subscriber connection. Over SSE the gateway reads one notifier "
        "stream per followed task (ADR 0024) and writes each frame to each of its followers, "
        "so a follower costs a write in the gateway and almost nothing in the notifier; over "
        "WebSocket the gateway likewise holds one notifier subscription per followed task "
        "(ADR 0026), while a client straight to the notifier costs a subscription there (a "
        "timeline read on subscribe, a write per event). "
        f"Over SSE, from 1 to {last.connections} "
        f"followers the lag p50 goes from {ms(first.lag.p50):.0f} to "
        f"{ms(last.lag.p50):.0f} ms and p99 from {ms(first.lag.p99):.0f} to "
        f"{ms(last.lag.p99):.0f} ms, as the gateway writes every stream from one event loop, "
        "on two cores that also run the followers' client: "
        f"each event to each follower cost the notifier "
        f"{1e6 * last.cpu_per_delivery('notifier'):.0f} µs of CPU, the gateway "
        f"{1e6 * last.cpu_per_delivery('gateway'):.0f} µs and the followers' process "
        f"{1e6 * last.cpu_per_delivery(FOLLOWERS):.0f} µs, so the last of "
        f"{last.connections} followers gets an event after about {spread:.0f} ms of that work "
        f"spread over the {cores} cores. "
        f"Memory per follower: about {sse.kib_per_connection('gateway'):.0f} KiB in the "
        f"gateway and {sse.kib_per_connection('notifier'):.0f} KiB in the notifier. "
        "Before a WebSocket subscription reaches the notifier the gateway asks the tasks "
        "service whether the task is the tenant's (once per task and gateway, like an SSE "
        f"follower). At {r.connections} connections its lag p50 is {ms(r.lag.p50):.0f} ms "
        f"(p99 {ms(r.lag.p99):.0f}) through the gateway against {ms(d.lag.p50):.0f} ms "
        f"(p99 {ms(d.lag.p99):.0f}) straight to the notifier with the same arrivals. Event "
        "for event, against a direct follower of the same task in the same run, the hop "
        f"through the gateway takes {ms(relay.p50):.1f} ms at p50 (p99 {ms(relay.p99):.0f}; "
        f"{ms(relay_one.p50):.1f} ms with one follower); the rest of the difference between "
        "the two runs is the load each puts on the two cores the services and the clients "
        "share. The relay costs "
        f"{relayed.kib_per_connection('gateway'):.0f} KiB per connection in the gateway "
        f"({direct.kib_per_connection('gateway'):.0f} when it is not on the path), while "
        f"the notifier holds {relayed.kib_per_connection('notifier'):.0f} KiB per relayed "
        f"connection and {direct.kib_per_connection('notifier'):.0f} per direct one."
    )
    if failed:
        text += (
            f" {failed} streams failed (listed above): a limit this run hit, whose cause the "
            "bench does not diagnose; the services' logs are kept with `--state-dir`."
        )
    return text
