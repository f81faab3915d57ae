"""4. Fan-out: N concurrent SSE followers of one task on one gateway and notifier."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import aiohttp

from relay_devkit.bench.common import MIB, Bench, rss_peaks, submit
from relay_devkit.bench.report import Section, ms, table
from relay_devkit.bench.sse import Followed, follow
from relay_devkit.bench.stats import Latency, ratio

CONNECTING = 50  # followers connecting at a time: they arrive in a quick ramp, not one burst


def _why(failure: BaseException) -> str:
    status = getattr(failure, "status", None) or str(failure)[:80]
    return f"{type(failure).__name__} ({status})"


async def _ramped(
    session: aiohttp.ClientSession, url: str, connecting: asyncio.Semaphore
) -> Followed:
    """Follow ``url``; the next follower waiting on ``connecting`` goes once this one's stream
    is open (or has failed)."""
    opened = asyncio.Event()
    await connecting.acquire()
    stream = asyncio.create_task(follow(session, url, within=120, opened=opened))
    waiting = asyncio.create_task(opened.wait())
    try:
        await asyncio.wait([stream, waiting], return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
        connecting.release()
    return await stream


def _prompt(followers: int) -> str:
    return f"/steps {10 + followers // 50}\n/sleep 1"


async def fan_out(bench: Bench) -> Section:
    levels = [1, 50, 200] if bench.quick else [1, 100, 500, 1000]
    rows: list[list[Any]] = []
    errors: Counter[str] = Counter()
    base_p50 = float("nan")
    for level in levels:
        async with bench.session(limit=0) as session:
            # long enough for every follower to be connected for most of the task's events
            task_id, began = await submit(session, _prompt(level))

            connecting = asyncio.Semaphore(CONNECTING)
            url = f"/v1/tasks/{task_id}/events"

            async with rss_peaks(bench, ("gateway", "notifier")) as peaks:
                results = await asyncio.gather(
                    *(_ramped(session, url, connecting) for _ in range(level)),
                    return_exceptions=True,
                )
        followed = [r for r in results if isinstance(r, Followed)]
        failed = len(results) - len(followed)
        errors.update(_why(r) for r in results if not isinstance(r, Followed))
        lags = [lag for f in followed for lag in f.live_lags()]
        summary = Latency.of(lags)
        if level == levels[0]:
            base_p50 = summary.p50
        rows.append(
            [
                level,
                len(followed),
                failed,
                summary.count,
                ms(summary.p50),
                ms(summary.p99),
                ratio(summary.p50, base_p50),
                max((f.opened for f in followed), default=began) - began,
                peaks["gateway"] / MIB,
                peaks["notifier"] / MIB,
            ]
        )
    section = Section(
        "Fan-out: concurrent SSE followers on one gateway and notifier",
        f"One task (`{' '.join(_prompt(1).splitlines())}`, ten more steps per 500 followers: "
        "an event about every second) followed by N clients on `GET /v1/tasks/{id}/events` "
        f"(aiohttp, one process; they connect {CONNECTING} at a time, each next one as soon "
        "as a stream opens, and then all stay open together). Lag is each event's "
        "`occurred_at` → its arrival at a follower, counted only for events that occurred "
        "after that follower's stream opened (earlier ones are history replayed on connect). "
        "RSS is each process's peak, sampled every 0.2 s. Baseline: one follower, in the "
        "same run.",
    )
    section.body.append(
        table(
            [
                "followers",
                "streams",
                "failed",
                "deliveries",
                "lag p50 ms",
                "lag p99 ms",
                "p50 / 1 follower",
                "all open after s",
                "gateway RSS MiB",
                "notifier RSS MiB",
            ],
            rows,
        )
    )
    if errors:
        section.body.append("Failed streams: " + ", ".join(f"{k} x{v}" for k, v in errors.items()))
    first, last = rows[0], rows[-1]
    extra = max(1, last[0] - first[0])
    section.reading = (
        "An event reaches the notifier once, is published once on Redis and read once by the "
        "notifier's one shared subscriber connection; from there each follower costs a write "
        "in the notifier and a relayed write in the gateway, which holds one upstream "
        "connection per follower (and each new follower first reads the timeline from "
        f"PostgreSQL). From 1 to {last[0]} followers the lag p50 goes from {first[4]:.0f} to "
        f"{last[4]:.0f} ms and p99 from {first[5]:.0f} to {last[5]:.0f} ms, as each process "
        "writes every stream from one event loop, on two cores that also run the followers' "
        "client. Memory per follower: about "
        f"{(last[8] - first[8]) * 1024 / extra:.0f} KiB in the gateway and "
        f"{(last[9] - first[9]) * 1024 / extra:.0f} KiB in the notifier."
    )
    if errors:
        section.reading += (
            f" {sum(errors.values())} streams failed (listed above): a limit this run hit, "
            "whose cause the bench does not diagnose; the services' logs are kept with "
            "`--state-dir`."
        )
    return section
