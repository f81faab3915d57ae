"""5. Agent concurrency: N tasks with think time at once on one agent process."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from relay_devkit.bench.common import MIB, Bench, rss_peaks, run_task
from relay_devkit.bench.procstat import cpu_seconds
from relay_devkit.bench.report import Section, ms, table
from relay_devkit.bench.stats import Latency, percentile, ratio
from relay_ops.traces import SpanRecord, load_spans

AGENT_CONCURRENCY = 512
HOLD_FACTOR = 1.25  # an agent "holds" N tasks while their p99 stays within 25 % of one alone
SPANS_FLUSHED_SECONDS = 2.5  # span files are written every second


@dataclass(frozen=True)
class AgentRun:
    """One task's run on the agent, from its spans: the process span of its task.submitted
    (message received → handled) and the time of the AWS calls inside it."""

    held: float  # seconds
    aws: float

    @property
    def own(self) -> float:
        """The run without the emulator's calls inside it (the model's think time stays in,
        as it does in the end-to-end time)."""
        return self.held - self.aws


def agent_runs(spans: Iterable[SpanRecord]) -> dict[str, AgentRun]:
    """Per task id, its first run on the agent. AWS calls are the aiobotocore client spans
    (``S3.PutObject``, ...) of the run's trace that lie within its process span."""
    by_trace: dict[int, list[SpanRecord]] = defaultdict(list)
    for span in spans:
        if span.service == "agent":
            by_trace[span.trace_id].append(span)
    runs: dict[str, AgentRun] = {}
    for members in by_trace.values():
        for run in sorted(members, key=lambda span: span.start):
            task_id = run.attributes.get("relay.task_id")
            if (
                not task_id
                or task_id in runs
                or not run.name.startswith("process ")
                or run.attributes.get("relay.event.type") != "task.submitted"
            ):
                continue
            inside = [s for s in members if run.start <= s.start and s.end <= run.end]
            runs[task_id] = AgentRun(
                held=run.duration_ms / 1000,
                aws=sum(s.duration_ms for s in inside if _is_aws_call(s)) / 1000,
            )
    return runs


def _is_aws_call(span: SpanRecord) -> bool:
    service, _, operation = span.name.partition(".")
    return span.kind == "CLIENT" and bool(operation) and service[:1].isupper()


FOLLOW_SECONDS = 120.0
FOLLOW_SECONDS_PER_TASK = 0.5


async def agent_concurrency(bench: Bench) -> Section:
    levels = [1, 8, 32] if bench.quick else [1, 8, 32, 64, 128, 256, 512]
    prompt = "/steps 1\n/sleep 2"
    rows: list[list[Any]] = []
    base = own_base = float("nan")
    holds, grown = 0, False
    own_holds, own_grown = 0, False
    for level in levels:
        async with bench.session(limit=0) as session, rss_peaks(bench, ("agent",)) as peaks:
            pids = {p: bench.stack.pid(p) for p in ("agent", "moto")}
            cpu0 = {p: cpu_seconds(pid) for p, pid in pids.items()}
            began = time.monotonic()
            # the last of N tasks waits behind the others on a slow machine: time to match
            within = FOLLOW_SECONDS + level * FOLLOW_SECONDS_PER_TASK
            runs = await asyncio.gather(
                *(run_task(session, prompt, within=within) for _ in range(level))
            )
            wall = time.monotonic() - began
            cpu = {p: cpu_seconds(pid) - cpu0[p] for p, pid in pids.items()}
        took, start_delay = [], []
        for _, _, followed in runs:
            # from the task's acceptance (task.submitted), so the intake's queueing stays out
            terminal = followed.terminal()
            assert terminal is not None
            accepted = next(a for a in followed.arrivals if a.event == "task.submitted")
            started = next(a for a in followed.arrivals if a.event == "task.started")
            took.append(terminal.received - accepted.occurred)
            start_delay.append(started.occurred - accepted.occurred)
        summary = Latency.of(took)
        await asyncio.sleep(SPANS_FLUSHED_SECONDS)
        spanned = agent_runs(load_spans(bench.stack.config.telemetry_dir))
        runs_here = [spanned[task_id] for task_id, _, _ in runs if task_id in spanned]
        own = Latency.of([r.own for r in runs_here])
        aws_share = sum(r.aws for r in runs_here) / max(1e-9, sum(r.held for r in runs_here))
        if level == levels[0]:
            base, own_base = summary.p50, own.p50
        grown = grown or summary.p99 > HOLD_FACTOR * base
        if not grown:
            holds = level
        own_grown = own_grown or own.p99 > HOLD_FACTOR * own_base or len(runs_here) < level
        if not own_grown:
            own_holds = level
        rows.append(
            [
                level,
                summary.p50,
                summary.p99,
                ratio(summary.p99, base),
                own.p99,
                ratio(own.p99, own_base),
                100 * aws_share,
                ms(percentile(start_delay, 99)),
                peaks["agent"] / MIB,
                ms(cpu["agent"] / level),
                100 * cpu["agent"] / wall,
                100 * cpu["moto"] / wall,
            ]
        )
    section = Section(
        "Agent concurrency: one worker, 2 s think time",
        f"N tasks submitted at once (`{' '.join(prompt.splitlines())}`: two model replies of "
        "2 s each, one artifact) to the one agent process, whose consumer may hold up to "
        f"{AGENT_CONCURRENCY} messages (RELAY_CONSUMER_CONCURRENCY). Time is from the "
        "task's acceptance (`task.submitted` occurred) to its terminal event's arrival on "
        "SSE, so the intake's own queueing is left out; start delay is acceptance → "
        "`task.started`. Baseline: one task alone, in the same run. The worker *holds* N "
        "while the p99 stays within 25 % of the baseline.\n\n"
        "The emulator's share: every AWS call the agent makes goes to moto, on the same two "
        "cores. From the agent's spans, each run (its `task.submitted` message received → "
        "handled) is split into the AWS calls made inside it (aiobotocore client spans: the "
        "artifact's upload) and the rest, the agent's own time (its model waits, tools, "
        "database writes, its event loop); 'agent's own p99' is that rest, and the worker "
        "holds N *by its own time* while that p99 stays within 25 % of the task alone's. "
        "What the split cannot take off: moto's delivery of task.submitted before the run, "
        "the events the agent's outbox sends after it, and the CPU moto takes from the agent "
        "on the shared cores.",
    )
    section.body += [
        table(
            [
                "tasks at once",
                "p50 s",
                "p99 s",
                "p99 / alone",
                "agent's own p99 s",
                "own p99 / alone",
                "AWS calls % of runs",
                "start delay p99 ms",
                "agent RSS MiB (peak)",
                "agent CPU ms per task",
                "agent CPU %",
                "moto CPU %",
            ],
            rows,
            digits=2,
        ),
        f"Holds **{holds}** concurrent tasks end to end, and **{own_holds}** by the agent's "
        "own time (of the levels tried).",
    ]
    first, last = rows[0], rows[-1]
    if last[10] < 50:
        limit = (
            "the agent's own CPU is not the limit: its tasks wait on calls to the emulator "
            "(every event, upload and receive goes through it) and on the database"
        )
    else:
        limit = "the agent's one event loop is busy, so its own CPU is the limit"
    section.reading = (
        "A task waiting on its model costs the agent almost nothing (an await), so what "
        "grows with N is the work between the waits: each task's start (lease, attempt "
        "row), its events through the outbox, the artifact's upload to S3 and the database "
        f"writes (a pool of {bench.stack.environment['RELAY_DB_POOL_MAX']} connections), all on "
        "one event loop, and behind them the emulator carrying every event and upload. At "
        f"{last[0]} tasks at once the end-to-end p99 is {last[3]:.2f}x the task alone and the "
        f"start delay p99 {last[7]:.0f} ms (alone {first[7]:.0f} ms); the agent's own p99 is "
        f"{last[5]:.2f}x its alone, its AWS calls {last[6]:.0f} % of the runs' time; the agent "
        f"used {last[10]:.0f} % of a core and moto {last[11]:.0f} %: {limit}. Of the "
        f"{last[2] - first[1]:.1f} s added at p99, up to {last[7] / 1000:.1f} s is before the "
        "run starts (task.submitted reaching the agent through the emulator); the rest is the "
        "runs themselves slowing, their uploads, events and writes queueing. Memory: "
        f"{(last[8] - first[8]) * 1024 / max(1, last[0] - first[0]):.0f} KiB per task held "
        f"(peak {last[8]:.0f} MiB)."
    )
    return section
