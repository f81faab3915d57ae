"""1. Intake: POST /v1/tasks through the gateway and tasks service, beside a bare FastAPI
endpoint with the same body model, driven by the same load generator."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from relay_devkit.bench.common import Bench
from relay_devkit.bench.loadgen import LoadResult, closed_loop
from relay_devkit.bench.procstat import busy_share, cpu_seconds, machine_ticks
from relay_devkit.bench.report import Section, ms, table
from relay_devkit.bench.stats import ratio
from relay_ops.stack.moto import free_port

INTAKE_CONCURRENCY = 32
INTAKE_WARMUP = 1.0
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


def _statuses(result: LoadResult) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(result.statuses.items(), key=str))


async def _load(
    label: str, url: str, pids: dict[str, int], headers: dict[str, str] | None, seconds: float
) -> IntakeRun:
    body = {"prompt": "/steps 1", "metadata": {"bench": "intake"}}
    cpu0 = {p: cpu_seconds(pid) for p, pid in pids.items()}
    mine = own_cpu()
    ticks = machine_ticks()
    result = await closed_loop(
        f"{url}/v1/tasks",
        body=body,
        headers=headers,
        concurrency=INTAKE_CONCURRENCY,
        seconds=seconds,
        warmup=INTAKE_WARMUP,
    )
    # CPU is read over the warm-up and the window together: scaled to the window's share
    share = seconds / (seconds + INTAKE_WARMUP)
    cpu = {p: (cpu_seconds(pid) - cpu0[p]) * share for p, pid in pids.items()}
    cpu["load generator"] = (own_cpu() - mine) * share
    return IntakeRun(label, result, cpu, busy_share(ticks, machine_ticks()))


async def intake(bench: Bench) -> Section:
    seconds = 5.0 if bench.quick else 10.0
    with baseline_server() as (base_url, base_pid):
        base = await _load(
            "bare FastAPI/uvicorn, same body model",
            base_url,
            {"bare app": base_pid},
            None,
            seconds,
        )
    pids = {p: bench.stack.pid(p) for p in ("gateway", "tasks", "moto")}
    with paused(bench, ("agent", "notifier", "artifacts")):
        relay = await _load("Relay: gateway → tasks", bench.url, pids, bench.headers, seconds)
    runs = [base, relay]
    section = Section(
        "Intake: POST /v1/tasks",
        f"A closed loop of {INTAKE_CONCURRENCY} concurrent clients (`relay_devkit.bench.loadgen`, "
        f"aiohttp, keep-alive) for {seconds:.0f} s after a {INTAKE_WARMUP:.0f} s warm-up, each "
        "POSTing a small task. Relay: the gateway (API key lookup, validation, signed internal "
        "token) → the tasks service (validation, one PostgreSQL transaction: task row + "
        "outbox row) → 202. The agent, notifier and artifacts processes are paused (SIGSTOP) "
        "meanwhile, as they are not on the intake path; the tasks service's outbox relay "
        "publishes each task.submitted to the emulator, as in use. Baseline: a bare FastAPI app on "
        "uvicorn (one process, as each service is) taking the gateway's own body model, "
        "`gateway.models.NewTask`, answering 202 at once; same generator, same run. CPU is "
        "utime+stime per answered request (servers: the bare app, or gateway + tasks + moto; "
        "PostgreSQL's own backends are not counted).",
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
    ]
    cores = os.cpu_count() or 1
    answered = max(1, len(relay.result.latencies))
    per = {p: v / answered for p, v in relay.cpu.items()}
    rate = relay.result.throughput
    base_cpu = sum(base.cpu.values()) / max(1, len(base.result.latencies))
    busiest = max(("gateway", "tasks", "moto"), key=lambda p: per[p])
    if relay.machine_busy >= SATURATED:
        limit = (
            f"CPU is the limit: the machine's {cores} cores were "
            f"{100 * relay.machine_busy:.0f} % busy over the window (the generator, the "
            "services, the emulator, PostgreSQL and whatever else shares the machine)."
        )
    else:
        limit = (
            f"CPU is not what limits it here: the machine's {cores} cores were "
            f"{100 * relay.machine_busy:.0f} % busy and the busiest process, {busiest}, used "
            f"{100 * rate * per[busiest]:.0f} % of a core, so requests wait on something "
            "other than CPU (a pool, a lock, the event loops' scheduling); the bench does not "
            "find out which."
        )
    section.reading = (
        f"Relay answered {rate:.0f} requests/s at {ms(sum(per.values())):.1f} ms of CPU "
        f"each (gateway {ms(per['gateway']):.1f}, tasks {ms(per['tasks']):.1f}, the "
        f"emulator taking task.submitted {ms(per['moto']):.1f}, the generator "
        f"{ms(per['load generator']):.1f}), where the bare endpoint needs {ms(base_cpu):.2f} ms "
        f"with its generator. {limit} What Relay adds per request: a second HTTP hop "
        "(gateway → tasks, with a signed internal token), the API-key lookup, a second "
        "validation, one PostgreSQL transaction (task row + outbox row, NOTIFY), and the "
        "OpenTelemetry spans (server, client, one per SQL statement) and log lines the bare "
        "app does not have. On AWS the emulator's share goes away; the services' own CPU per "
        "request is the figure to compare between runs."
    )
    return section
