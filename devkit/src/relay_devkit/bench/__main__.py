"""``python -m relay_devkit.bench [--out docs/benchmarks.md] [--quick] [--only NAME ...]``: run the
benchmarks on one local stack (fresh database, free ports) and write the report."""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from relay_devkit.bench.common import PROFILE_FORMATS
from relay_devkit.bench.concurrency import AGENT_CONCURRENCY
from relay_devkit.bench.machine import facts
from relay_devkit.bench.procstat import raise_open_files_limit
from relay_devkit.bench.report import Report, render
from relay_devkit.bench.run import BENCHMARKS, run_all
from relay_devkit.testing import DEFAULT_REDIS_URL, fresh_database
from relay_ops.stack.process import running_stack

# Fan-out holds up to 1,000 followers open at once: a WebSocket relayed by the gateway is three
# sockets (the client's, the gateway's two) besides the services' own pools and files. `relay up`
# and the services inherit this process's limit, so it is raised here, before the stack starts.
OPEN_FILES = 8192

COMMANDS = [
    "# PostgreSQL and Redis running locally, as for make test (README); no Docker, no AWS",
    "make bench    # = .venv/bin/python -m relay_devkit.bench --out docs/benchmarks.md (~13 min)",
    ".venv/bin/python -m relay_devkit.bench --quick --out /tmp/bench.md    # fewer tasks (~5 min)",
    ".venv/bin/python -m relay_devkit.bench --only fanout --state-dir /tmp/s --out /tmp/f.md",
    ".venv/bin/python -m relay_devkit.bench --only webhooks --quick --out /tmp/w.md    # ~2 min",
    "# flame graphs (py-spy): intake-* (gateway, tasks under the intake load), costs-alone-* and",
    "# costs-load-* (the five services), fanout-sse-* and fanout-ws-* (gateway, notifier, the",
    "# followers' process, once every stream is open); --profile-format raw for collapsed stacks;",
    "# profiling slows them, so a profiled run's figures are not compared",
    ".venv/bin/python -m relay_devkit.bench --only intake --profile docs/profiles --out /tmp/p.md",
]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m relay_devkit.bench")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    parser.add_argument("--quick", action="store_true", help="fewer tasks and followers")
    parser.add_argument(
        "--only", action="append", choices=list(BENCHMARKS), help="run only these (repeatable)"
    )
    parser.add_argument(
        "--state-dir", type=Path, help="keep the stack's logs, spans and metrics here"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="write py-spy flame graphs (SVG) of the services under load here (slows them)",
    )
    parser.add_argument(
        "--profile-format",
        choices=list(PROFILE_FORMATS),
        default="flamegraph",
        help="py-spy's format for --profile: raw is collapsed stacks, one per line, to add up",
    )
    args = parser.parse_args()
    open_files = raise_open_files_limit(OPEN_FILES)
    if open_files < OPEN_FILES:
        print(f"open files limited to {open_files} (hard limit): fan-out may fail", flush=True)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    started = time.monotonic()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    redis_url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    with (
        fresh_database() as database_url,
        tempfile.TemporaryDirectory() as scratch,
    ):
        machine = facts(database_url)
        state = args.state_dir or Path(scratch)
        state.mkdir(parents=True, exist_ok=True)
        with running_stack(
            database_url,
            redis_url,
            state,
            RELAY_METRICS_INTERVAL_SECONDS="1",
            RELAY_CONSUMER_CONCURRENCY=str(AGENT_CONCURRENCY),
            RELAY_DB_POOL_MAX="10",
            RELAY_LOG_LEVEL="WARNING",
        ) as stack:
            done = asyncio.run(
                run_all(
                    stack,
                    quick=args.quick,
                    only=args.only or (),
                    profile=args.profile,
                    profile_format=args.profile_format,
                )
            )
    report = Report(machine, COMMANDS, stamp, time.monotonic() - started, done)
    args.out.write_text(render(report), encoding="utf-8")
    print(f"wrote {args.out} in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
