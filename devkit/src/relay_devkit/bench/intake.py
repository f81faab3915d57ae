"""1. Intake: POST /v1/tasks through the gateway and tasks service, beside a bare FastAPI
endpoint with the same body model, driven by the same load generator."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg

from relay_devkit.bench.common import Bench, profiled
from relay_devkit.bench.loadgen import LoadResult, closed_loop, open_loop
from relay_devkit.bench.procstat import busy_share, cpu_seconds, machine_ticks
from relay_devkit.bench.report import Section, ms, table
from relay_devkit.bench.stats import ratio
from relay_ops.stack.moto import free_port

INTAKE_CONCURRENCY = 32
INTAKE_WARMUP = 1.0
DRAIN_WINDOW_SECONDS = 20.0
SATURATED = 0.9  # share of all cores busy from which CPU is taken to be the limit


@contextlib.contextmanager
def baseline_server() -> Iterator[tuple[str, int]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "relay_devkit.bench.baseline_app", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/docs", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.contextmanager
def paused(bench: Bench, programs: Iterable[str]) -> Iterator[None]:
    """SIGSTOP the consumers that are not on the intake path, so that they do not compete for
    the two cores with what is measured; SIGCONT after."""
    pids = [bench.stack.pid(p) for p in programs]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def own_cpu() -> float:
    """This process's CPU time (the load generator's), threads included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class IntakeRun:
    label: str
    result: LoadResult
    cpu: dict[str, float]  # program → CPU seconds over the run
    machine_busy: float  # share of all cores busy over the run, whoever used them

    def row(self, base: IntakeRun | None) -> list[Any]:
        r = self.result
        per_request = {p: ms(v / max(1, len(r.latencies))) for p, v in self.cpu.items()}
        servers = sum(v for p, v in per_request.items() if p != "load generator")
        cells: list[Any] = [self.label, r.throughput, ms(r.latency.p50), ms(r.latency.p99)]
        if base is not None:
            b = base.result
            cells += [ratio(r.throughput, b.throughput), ratio(r.latency.p50, b.latency.p50)]
        else:
            cells += [1.0, 1.0]
        cells += [
            servers,
            per_request["load generator"],
            100 * self.machine_busy,
            _statuses(r),
        ]
        return cells


BODY = {"prompt": "/steps 1", "metadata": {"bench": "intake"}}


def _statuses(result: LoadResult) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(result.statuses.items(), key=str))


async def _load(
    label: str,
    pids: dict[str, int],
    seconds: float,
    drive: Callable[[], Awaitable[LoadResult]],
) -> IntakeRun:
    cpu0 = {p: cpu_seconds(pid) for p, pid in pids.items()}
    mine = own_cpu()
    ticks = machine_ticks()
    result = await drive()
    # CPU is read over the warm-up and the window together: scaled to the window's share
    share = seconds / (seconds + INTAKE_WARMUP)
    cpu = {p: (cpu_seconds(pid) - cpu0[p]) * share for p, pid in pids.items()}
    cpu["load generator"] = (own_cpu() - mine) * share
    return IntakeRun(label, result, cpu, busy_share(ticks, machine_ticks()))


def _closed(
    url: str, headers: dict[str, str] | None, seconds: float, *, keyed: bool = False
) -> Awaitable[LoadResult]:
    return closed_loop(
        f"{url}/v1/tasks",
        body=BODY,
        headers=headers,
        concurrency=INTAKE_CONCURRENCY,
        seconds=seconds,
        warmup=INTAKE_WARMUP,
        keyed=keyed,
    )


def _outbox_pending(bench: Bench) -> int:
    with psycopg.connect(bench.stack.environment["DATABASE_URL"]) as conn:
        row = conn.execute(
            "SELECT count(*) FROM tasks.outbox WHERE published_at IS NULL"
        ).fetchone()
    return int(row[0]) if row else 0


async def _drain_pace(bench: Bench) -> tuple[int, int, float]:
    """The tasks service's outbox once the emulator runs again: how many events it held, how
    many its relay published within DRAIN_WINDOW_SECONDS, and in how long (consumers paused,
    as in the window)."""
    pending = await asyncio.to_thread(_outbox_pending, bench)
    began = time.monotonic()
    left = pending
    with paused(bench, ("agent", "notifier", "artifacts")):
        while left and time.monotonic() - began < DRAIN_WINDOW_SECONDS:
            await asyncio.sleep(0.5)
            left = await asyncio.to_thread(_outbox_pending, bench)
    return pending, pending - left, time.monotonic() - began


async def intake(bench: Bench) -> Section:
    seconds = 5.0 if bench.quick else 10.0
    with baseline_server() as (base_url, base_pid):
        base = await _load(
            "bare FastAPI/uvicorn, same body model",
            {"bare app": base_pid},
            seconds,
            lambda: _closed(base_url, None, seconds),
        )
    pids = {p: bench.stack.pid(p) for p in ("gateway", "tasks", "moto")}
    relay = bench.url, bench.headers
    with paused(bench, ("agent", "notifier", "artifacts")):
        in_use = await _load(
            "Relay, as in use (outbox publishing)", pids, seconds, lambda: _closed(*relay, seconds)
        )
    with (
        paused(bench, ("agent", "notifier", "artifacts", "moto")),
        profiled(bench, "intake", ("gateway", "tasks"), seconds + INTAKE_WARMUP),
    ):
        peak = await _load(
            "Relay, emulator paused (outbox after)", pids, seconds, lambda: _closed(*relay, seconds)
        )
    pending, published, drain_seconds = await _drain_pace(bench)
    rate = max(1.0, peak.result.throughput / 2)
    with paused(bench, ("agent", "notifier", "artifacts", "moto")):
        half = await _load(
            f"Relay at half its peak, open loop ({rate:.0f}/s)",
            pids,
            seconds,
            lambda: open_loop(
                f"{bench.url}/v1/tasks",
                body=BODY,
                headers=bench.headers,
                rate=rate,
                seconds=seconds,
                warmup=INTAKE_WARMUP,
            ),
        )
    with paused(bench, ("agent", "notifier", "artifacts", "moto")):
        keyed = await _load(
            "Relay, emulator paused, an Idempotency-Key on each request",
            pids,
            seconds,
            lambda: _closed(*relay, seconds, keyed=True),
        )
    runs = [base, in_use, peak, half, keyed]
    section = Section(
        "Intake: POST /v1/tasks",
        f"A closed loop of {INTAKE_CONCURRENCY} concurrent clients (`relay_devkit.bench.loadgen`, "
        f"aiohttp, keep-alive) for {seconds:.0f} s after a {INTAKE_WARMUP:.0f} s warm-up, each "
        "POSTing a small task. Relay: the gateway (API key, rate limits, validation, internal "
        "token) → the tasks service (validation, quota, one PostgreSQL statement: task row + "
        "outbox row; no Idempotency-Key; the bench's tenant has no active-task quota, which by "
        "default adds its lock and a usage read) → 202. The agent, notifier and artifacts "
        "processes are paused (SIGSTOP) meanwhile, as they are not on the intake path. Relay "
        "runs four "
        "ways: as in use, the tasks service's outbox relay publishing each task.submitted to "
        "the emulator meanwhile; with the emulator paused too, so that the cores measure Relay "
        "alone (on AWS, EventBridge is not on them) and the outbox publishes after the window, "
        "its drain timed on its own; emulator paused again, an open loop at half the peak "
        "rate of the run before (requests at fixed times whatever the answers; latency from "
        "each request's scheduled time); and a last closed loop, emulator paused, that sends a new "
        "Idempotency-Key with every request, as relay-client does: the tasks service then takes "
        "the key's advisory lock and looks it up before the statement (ADR 0020). Baseline: "
        "a bare FastAPI app on uvicorn (one process, "
        "as each service is) taking the gateway's own body model, `gateway.models.NewTask`, "
        "answering 202 at "
        "once; same generator, same run. CPU is utime+stime per answered request (servers: the "
        "bare app, or gateway + tasks + moto; PostgreSQL's own backends are not counted).",
    )
    section.body += [
        table(
            [
                "",
                "requests/s",
                "p50 ms",
                "p99 ms",
                "throughput / bare",
                "p50 / bare",
                "server CPU ms/req",
                "generator CPU ms/req",
                "machine busy %",
                "statuses",
            ],
            [run.row(None if run is base else base) for run in runs],
            digits=2,
        ),
        "Server CPU per request, by process: "
        + "; ".join(
            f"{run.label}: "
            + ", ".join(
                f"{p} {ms(v / max(1, len(run.result.latencies))):.2f} ms"
                for p, v in run.cpu.items()
                if p != "load generator"
            )
            for run in runs[1:]
        )
        + ".",
        f"The outbox after the paused-emulator run held {pending:,} task.submitted events; once "
        f"the emulator ran again its relay published {published:,} in {drain_seconds:.1f} s "
        f"({published / max(drain_seconds, 1e-9):,.0f}/s, PutEvents of up to ten entries). That "
        "is the emulator's pace, which falls as the paused consumers' queues fill (every "
        "task.submitted of the runs before is waiting in them); on AWS PutEvents takes tens of "
        "milliseconds whatever the queues hold.",
    ]
    section.reading = _reading(base, in_use, peak, half, keyed)
    return section


def _reading(
    base: IntakeRun, in_use: IntakeRun, peak: IntakeRun, half: IntakeRun, keyed: IntakeRun
) -> str:
    cores = os.cpu_count() or 1

    def per(run: IntakeRun, program: str) -> float:
        return run.cpu[program] / max(1, len(run.result.latencies))

    own = per(peak, "gateway") + per(peak, "tasks")
    base_cpu = sum(base.cpu.values()) / max(1, len(base.result.latencies))
    if peak.machine_busy >= SATURATED:
        limit = (
            f"CPU is the limit: the machine's {cores} cores were "
            f"{100 * peak.machine_busy:.0f} % busy over the peak window (the generator, the two "
            "services, PostgreSQL and whatever else shares the machine)"
        )
    else:
        limit = (
            f"CPU is not what limits it: the {cores} cores were "
            f"{100 * peak.machine_busy:.0f} % busy, so requests wait on something else (a "
            "pool, a lock, the event loops' scheduling)"
        )
    return (
        f"With the emulator off the cores, Relay answered {peak.result.throughput:.0f} "
        f"requests/s ({ratio(peak.result.throughput, base.result.throughput):.2f}x the bare "
        f"endpoint) at {ms(own):.2f} ms of gateway + tasks CPU each (gateway "
        f"{ms(per(peak, 'gateway')):.2f}, tasks {ms(per(peak, 'tasks')):.2f}); the bare endpoint "
        f"needs {ms(base_cpu):.2f} ms with its generator. {limit}. As in use, the emulator "
        f"takes {ms(per(in_use, 'moto')):.2f} ms per task.submitted on the same cores, and "
        f"Relay answers {in_use.result.throughput:.0f} requests/s "
        f"({ratio(in_use.result.throughput, base.result.throughput):.2f}x). At half its peak "
        f"rate the p99 is {ms(half.result.latency.p99):.1f} ms (p50 "
        f"{ms(half.result.latency.p50):.1f}). With an Idempotency-Key on every request it "
        f"answered {keyed.result.throughput:.0f} requests/s at {ms(per(keyed, 'tasks')):.2f} ms "
        f"of tasks CPU each (keyless {ms(per(peak, 'tasks')):.2f}): the key's lock and lookup "
        "are two more statements in a transaction, five round trips where the keyless "
        "submission has one. What Relay adds per request over the bare "
        "endpoint: a second HTTP hop (gateway → tasks), the API-key check (remembered for "
        "RELAY_API_KEY_CACHE_SECONDS), the rate limiter's Redis call, a second validation, one "
        "PostgreSQL statement (task row + outbox row, NOTIFY), and the OpenTelemetry spans "
        "(server, client, Redis) the bare app does not have."
    )
