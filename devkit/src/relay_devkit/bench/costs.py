"""3. AWS requests, EventBridge events and CPU per task: counters from the services' metrics
files and CPU time from /proc, over windows of work minus an idle window of the same run."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from relay_devkit.bench.common import Bench, profiled, run_task, submit
from relay_devkit.bench.metrics_files import Key, difference, latest_totals
from relay_devkit.bench.procstat import cpu_seconds
from relay_devkit.bench.report import Section, ms, table
from relay_devkit.bench.sse import follow
from relay_devkit.bench.stats import ratio
from relay_ops.stack.config import SERVICES

COUNTERS = frozenset({"relay.aws.calls", "relay.aws.events.sent"})
PROFILE_SECONDS = 20.0  # --profile: longer than either window takes here
EVENTS_SENT: Key = ("relay.aws.events.sent", "")


@dataclass
class Snapshot:
    at: float
    calls: dict[str, Counter[Key]]  # by service
    cpu: dict[str, float]  # by program


async def snapshot(bench: Bench) -> Snapshot:
    """Counters and CPU now. Metrics export every second: wait for one more export first."""
    cpu = {name: cpu_seconds(pid) for name, pid in bench.pids().items()}
    at = time.time()
    await asyncio.sleep(1.5)
    directory = bench.stack.config.telemetry_dir
    calls = {s: latest_totals(directory / f"{s}.metrics.jsonl", COUNTERS)[1] for s in SERVICES}
    return Snapshot(at, calls, cpu)


@dataclass
class Usage:
    seconds: float
    calls: dict[str, Counter[Key]]
    cpu: dict[str, float]

    @classmethod
    def between(cls, before: Snapshot, after: Snapshot) -> Usage:
        return cls(
            after.at - before.at,
            {s: difference(after.calls[s], before.calls[s]) for s in SERVICES},
            {p: after.cpu[p] - before.cpu[p] for p in before.cpu},
        )

    def net_calls(self, idle: Usage) -> dict[tuple[str, str], float]:
        """Calls per (service, operation) minus the idle rate over this window's length."""
        out: dict[tuple[str, str], float] = {}
        for service in SERVICES:
            for (metric, label), count in self.calls[service].items():
                if metric == "relay.aws.calls":
                    idle_count = idle.calls[service].get((metric, label), 0)
                    out[(service, label)] = count - idle_count * self.seconds / idle.seconds
        return out

    def net_cpu(self, idle: Usage) -> dict[str, float]:
        return {p: used - idle.cpu[p] * self.seconds / idle.seconds for p, used in self.cpu.items()}

    def events_sent(self) -> float:
        return sum(self.calls[s].get(EVENTS_SENT, 0) for s in SERVICES)


async def measure(bench: Bench, work: Any) -> tuple[Usage, Any]:
    before = await snapshot(bench)
    result = await work
    await asyncio.sleep(2)  # the consumers after the terminal event (tasks, artifacts)
    return Usage.between(before, await snapshot(bench)), result


async def aws_and_cpu(bench: Bench) -> Section:
    alone_n, load_n = (5, 40) if bench.quick else (10, 100)
    prompt = "/steps 2"
    idle_seconds = 5 if bench.quick else 10
    before = await snapshot(bench)
    await asyncio.sleep(idle_seconds)
    idle = Usage.between(before, await snapshot(bench))

    async def alone() -> None:
        async with bench.session() as session:
            for _ in range(alone_n):
                await run_task(session, prompt)

    async def loaded() -> None:
        async with bench.session(limit=load_n * 2) as session:
            gate = asyncio.Semaphore(20)

            async def one() -> None:
                async with gate:
                    task_id, _ = await submit(session, prompt)
                await follow(session, f"/v1/tasks/{task_id}/events")

            await asyncio.gather(*(one() for _ in range(load_n)))

    # --profile: where each service's CPU goes in each window (the samplers run a fixed time,
    # long enough for the window on this machine; they sample only what runs, so not idling)
    with profiled(bench, "costs-alone", SERVICES, PROFILE_SECONDS):
        single, _ = await measure(bench, alone())
    with profiled(bench, "costs-load", SERVICES, PROFILE_SECONDS):
        load, _ = await measure(bench, loaded())
    a_calls, l_calls = single.net_calls(idle), load.net_calls(idle)
    ops = sorted(set(a_calls) | set(l_calls))
    rows: list[list[Any]] = [
        [
            f"{service}: {op}",
            a_calls.get((service, op), 0) / alone_n,
            l_calls.get((service, op), 0) / load_n,
            idle.calls[service].get(("relay.aws.calls", op), 0) / idle.seconds,
        ]
        for service, op in ops
    ]
    a_total, l_total = sum(a_calls.values()) / alone_n, sum(l_calls.values()) / load_n
    idle_total = sum(
        v for s in SERVICES for (m, _), v in idle.calls[s].items() if m == "relay.aws.calls"
    )
    rows.append(["**all AWS calls**", a_total, l_total, idle_total / idle.seconds])
    rows.append(
        [
            "**EventBridge entries sent**",
            single.events_sent() / alone_n,
            load.events_sent() / load_n,
            None,
        ]
    )
    a_cpu, l_cpu = single.net_cpu(idle), load.net_cpu(idle)
    cpu_rows: list[list[Any]] = [
        [p, ms(a_cpu[p] / alone_n), ms(l_cpu[p] / load_n), ms(idle.cpu[p] / idle.seconds)]
        for p in (*SERVICES, "moto")
    ]
    section = Section(
        "AWS requests, EventBridge events and CPU per task",
        f"The happy path (`{prompt}`: two tool steps, one artifact), alone ({alone_n} tasks, "
        f"one at a time) and under load ({load_n} tasks submitted 20 at a time). AWS calls "
        "are counted at the client library: every service's aiobotocore clients count each "
        "API call (`relay.aws.calls` by `rpc.service` and `rpc.method`) and each EventBridge "
        "entry (`relay.aws.events.sent`), exported every second to the stack's metrics "
        "files. CPU is utime+stime of each process from /proc. Baseline: the idle stack over "
        f"{idle.seconds:.0f} s in the same run (long polls, outbox polls, housekeeping); its "
        "rate times each window's length is subtracted from the window's figures. A window "
        "ends 2 s after the last terminal event, so the events after it are counted too.",
    )
    section.body += [
        table(
            ["calls per task (service: operation)", "alone", "under load", "idle, per s"],
            rows,
            digits=2,
        ),
        table(["CPU ms per task", "alone", "under load", "idle, per s"], cpu_rows, digits=1),
    ]

    def summed(calls: dict[tuple[str, str], float], suffix: str) -> float:
        return sum(v for (_, op), v in calls.items() if op.endswith(suffix))

    a_puts, l_puts = summed(a_calls, ".PutEvents"), summed(l_calls, ".PutEvents")
    a_recv, l_recv = summed(a_calls, ".ReceiveMessage"), summed(l_calls, ".ReceiveMessage")
    a_s3 = summed(a_calls, "Object") / alone_n
    services_cpu = sum(l_cpu[p] for p in SERVICES) / load_n
    moto_cpu = l_cpu["moto"] / load_n
    bound = (
        "on this machine the emulator, not Relay, bounds whole-pipeline throughput."
        if moto_cpu > services_cpu
        else "the emulator's share of the cores is below Relay's own."
    )
    section.reading = (
        f"Alone, a task costs {a_total:.0f} AWS calls; under load {l_total:.0f}. The fixed "
        f"part is S3 ({a_s3:.0f} calls: the agent's upload, checksummed, then the artifacts "
        "service's HEAD that verifies it; ADR 0023). The rest amortises: each "
        "outbox relay sends what is pending in one PutEvents (up to ten entries), "
        f"{ratio(single.events_sent(), a_puts):.1f} entries per call alone and "
        f"{ratio(load.events_sent(), l_puts):.1f} under load, and one ReceiveMessage returns "
        f"up to ten messages ({a_recv / alone_n:.1f} receives per task alone, "
        f"{l_recv / load_n:.1f} under load; deletes go in batches the same way). CPU per task "
        f"falls under load for the same reason: {ms(services_cpu):.0f} ms over the five "
        f"services, against {ms(moto_cpu):.0f} ms in the emulator: {bound}"
    )
    return section
