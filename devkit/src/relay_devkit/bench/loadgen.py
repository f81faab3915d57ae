"""A small closed-loop HTTP load generator: ``concurrency`` workers, each sending its next
request as soon as the last one is answered, for a fixed time after a warm-up. The same
generator drives the baseline and Relay, so its own cost is the same on both sides."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from relay_devkit.bench.stats import Latency


@dataclass
class LoadResult:
    seconds: float  # the measured window
    latencies: list[float] = field(default_factory=list)  # answered with an expected status
    statuses: Counter[int | str] = field(default_factory=Counter)

    @property
    def throughput(self) -> float:
        """Expected answers per second in the measured window."""
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    @property
    def latency(self) -> Latency:
        return Latency.of(self.latencies)


async def closed_loop(
    url: str,
    *,
    body: Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
    concurrency: int,
    seconds: float,
    warmup: float = 1.0,
    expect: int = 202,
    keyed: bool = False,
) -> LoadResult:
    """POST ``body`` as JSON to ``url`` from ``concurrency`` workers; answers during the
    warm-up are not recorded. Any other status, or a transport error, is counted, not timed.
    ``keyed``: each request carries an Idempotency-Key of its own, as relay-client sends."""
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    result = LoadResult(seconds=seconds)
    loop = asyncio.get_running_loop()
    start = loop.time() + warmup
    stop = start + seconds
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers=dict(headers or {})
    ) as session:

        async def worker() -> None:
            while (now := loop.time()) < stop:
                key = {"Idempotency-Key": uuid.uuid4().hex} if keyed else None
                began = time.perf_counter()
                try:
                    async with session.post(url, json=body, headers=key) as response:
                        await response.read()
                        status: int | str = response.status
                except (aiohttp.ClientError, TimeoutError) as exc:
                    status = type(exc).__name__
                took = time.perf_counter() - began
                if now >= start and loop.time() <= stop:
                    result.statuses[status] += 1
                    if status == expect:
                        result.latencies.append(took)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return result


async def open_loop(
    url: str,
    *,
    body: Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
    rate: float,
    seconds: float,
    warmup: float = 1.0,
    expect: int = 202,
) -> LoadResult:
    """POST ``body`` at a fixed ``rate`` per second, each request when its time comes whether or
    not earlier ones were answered. Latency runs from a request's scheduled time, so a stall is
    counted for every request it delayed (no coordinated omission)."""
    timeout = aiohttp.ClientTimeout(total=30)
    result = LoadResult(seconds=seconds)
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=timeout, headers=dict(headers or {})
    ) as session:

        async def one(scheduled: float, recorded: bool) -> None:
            try:
                async with session.post(url, json=body) as response:
                    await response.read()
                    status: int | str = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                status = type(exc).__name__
            took = loop.time() - scheduled
            if recorded:
                result.statuses[status] += 1
                if status == expect:
                    result.latencies.append(took)

        began = loop.time()
        requests: list[asyncio.Task[None]] = []
        for n in range(int((warmup + seconds) * rate)):
            scheduled = began + n / rate
            if (delay := scheduled - loop.time()) > 0:
                await asyncio.sleep(delay)
            requests.append(asyncio.create_task(one(scheduled, scheduled >= began + warmup)))
        await asyncio.gather(*requests)
    return result
