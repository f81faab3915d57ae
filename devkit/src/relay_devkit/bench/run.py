"""The order the benchmarks run in on one stack, and the order the report shows them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from relay_devkit.bench.common import TENANT, Bench
from relay_devkit.bench.concurrency import agent_concurrency
from relay_devkit.bench.costs import aws_and_cpu
from relay_devkit.bench.edge import serverless_edge
from relay_devkit.bench.fanout import fan_out
from relay_devkit.bench.intake import intake
from relay_devkit.bench.latency import overhead_latency
from relay_devkit.bench.report import Section
from relay_devkit.bench.webhooks import webhooks
from relay_ops.stack.process import RunningStack

# Run order: on a quiet stack first; intake last, as it leaves a backlog of tasks behind. Webhooks
# just before it: its endpoints exist only while it runs, so no scenario before it delivers any.
BENCHMARKS: dict[str, Callable[[Bench], Awaitable[Section]]] = {
    "latency": overhead_latency,
    "aws": aws_and_cpu,
    "agent": agent_concurrency,
    "fanout": fan_out,
    "webhooks": webhooks,
    "edge": serverless_edge,
    "intake": intake,
}
REPORT_ORDER = ("intake", "latency", "aws", "fanout", "webhooks", "agent", "edge")


async def run_all(
    stack: RunningStack,
    *,
    quick: bool,
    only: Sequence[str] = (),
    profile: Path | None = None,
    profile_format: str = "flamegraph",
) -> list[Section]:
    key = await asyncio.to_thread(stack.create_key, TENANT)
    bench = Bench(stack, key, quick, profile=profile, profile_format=profile_format)
    # the limiter is on every request (its cost is in the figures), never the bottleneck
    await asyncio.to_thread(stack.unthrottle, TENANT)
    results: dict[str, Section] = {}
    for name, step in BENCHMARKS.items():
        if only and name not in only:
            continue
        began = time.monotonic()
        results[name] = await step(bench)
        print(f"{name}: {time.monotonic() - began:.0f} s", flush=True)
    return [results[name] for name in REPORT_ORDER if name in results]
