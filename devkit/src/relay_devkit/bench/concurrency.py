"""5. Agent concurrency: N tasks with think time at once on one agent process."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from relay_devkit.bench.common import MIB, Bench, rss_peaks, run_task
from relay_devkit.bench.procstat import cpu_seconds
from relay_devkit.bench.report import Section, ms, table
from relay_devkit.bench.stats import Latency, percentile, ratio

AGENT_CONCURRENCY = 128
HOLD_FACTOR = 1.25  # an agent "holds" N tasks while their p99 stays within 25 % of one alone


async def agent_concurrency(bench: Bench) -> Section:
    levels = [1, 8, 32] if bench.quick else [1, 8, 32, 64, 128]
    prompt = "/steps 1\n/sleep 2"
    rows: list[list[Any]] = []
    base = float("nan")
    holds, grown = 0, False
    for level in levels:
        async with bench.session(limit=0) as session, rss_peaks(bench, ("agent",)) as peaks:
            pids = {p: bench.stack.pid(p) for p in ("agent", "moto")}
            cpu0 = {p: cpu_seconds(pid) for p, pid in pids.items()}
            began = time.monotonic()
            runs = await asyncio.gather(*(run_task(session, prompt) for _ in range(level)))
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
        if level == levels[0]:
            base = summary.p50
        grown = grown or summary.p99 > HOLD_FACTOR * base
        if not grown:
            holds = level
        rows.append(
            [
                level,
                summary.p50,
                summary.p99,
                ratio(summary.p99, base),
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
        "`task.started`. Baseline: one task "
        "alone, in the same run. The worker *holds* N while the p99 stays within 25 % of "
        "the baseline.",
    )
    section.body += [
        table(
            [
                "tasks at once",
                "p50 s",
                "p99 s",
                "p99 / alone",
                "start delay p99 ms",
                "agent RSS MiB (peak)",
                "agent CPU ms per task",
                "agent CPU %",
                "moto CPU %",
            ],
            rows,
            digits=2,
        ),
        f"Holds **{holds}** concurrent tasks (of the levels tried) before lag grows.",
    ]
    first, last = rows[0], rows[-1]
    if last[7] < 50:
        limit = (
            "the agent's own CPU is not the limit: its tasks wait on calls to the emulator "
            "(every event, upload and receive goes through it) and on the database, which "
            "this bench does not split further"
        )
    else:
        limit = "the agent's one event loop is busy, so its own CPU is the limit"
    section.reading = (
        "A task waiting on its model costs the agent almost nothing (an await), so what "
        "grows with N is the work between the waits: each task's start (lease, attempt "
        "row), its events through the outbox, the artifact's upload to S3 and the database "
        f"writes (a pool of {bench.stack.environment['RELAY_DB_POOL_MAX']} connections), all on "
        "one event loop, and behind them the emulator carrying every event and upload. At "
        f"{last[0]} tasks at once the p99 is {last[3]:.2f}x the task alone and the start "
        f"delay p99 {last[4]:.0f} ms (alone {first[4]:.0f} ms); over that level the agent "
        f"used {last[7]:.0f} % of a core and moto {last[8]:.0f} %: {limit}. Of the "
        f"{last[2] - first[1]:.1f} s added at p99, up to {last[4] / 1000:.1f} s is before the "
        "run starts (task.submitted reaching the agent); the rest is the runs themselves "
        "slowing, their events, uploads and writes queueing. Memory: "
        f"{(last[5] - first[5]) * 1024 / max(1, last[0] - first[0]):.0f} KiB per task held "
        f"(peak {last[5]:.0f} MiB)."
    )
    return section
