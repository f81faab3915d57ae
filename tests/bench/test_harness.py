"""The bench harness's own logic: percentiles, /proc parsing, metrics files, SSE parsing, the
hop split and the report. Fast and offline; the bench itself runs in `make bench` only."""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from relay_devkit.bench.latency import HOPS, hop_split, index_spans
from relay_devkit.bench.loadgen import closed_loop
from relay_devkit.bench.metrics_files import counter_totals, difference, latest_totals
from relay_devkit.bench.procstat import busy_share, cpu_seconds, machine_ticks, rss_bytes
from relay_devkit.bench.report import Report, Section, cell, render, table
from relay_devkit.bench.sse import Arrival, Followed, parse_event
from relay_devkit.bench.stats import Latency, percentile, ratio
from relay_devkit.testing import serve_app
from relay_ops.traces import SpanRecord


def test_percentiles_interpolate_between_closest_ranks() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0]  # unsorted on purpose
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 3.0
    assert percentile(values, 100) == 5.0
    assert percentile(values, 25) == 2.0
    assert percentile(list(range(1, 101)), 99) == pytest.approx(99.01)
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError, match="outside"):
        percentile(values, 101)


def test_latency_summary_and_ratio() -> None:
    summary = Latency.of([0.1] * 99 + [1.0])
    assert (summary.count, summary.p50, summary.max) == (100, 0.1, 1.0)
    assert 0.1 < summary.p99 < 1.0
    assert ratio(3.0, 1.5) == 2.0
    assert math.isnan(ratio(1.0, 0.0))
    assert math.isnan(ratio(math.nan, 1.0))


def test_cpu_and_rss_read_from_proc_even_with_spaces_in_the_name(tmp_path: Path) -> None:
    proc = tmp_path / "42"
    proc.mkdir()
    ticks = os.sysconf("SC_CLK_TCK")
    rest = " ".join(["S"] + ["0"] * 10 + [str(3 * ticks), str(ticks)] + ["0"] * 30)
    (proc / "stat").write_text(f"42 (python -m (x) y) {rest}\n")
    (proc / "status").write_text("Name:\tpython\nVmRSS:\t  2048 kB\nThreads:\t4\n")
    assert cpu_seconds(42, proc=tmp_path) == 4.0
    assert rss_bytes(42, proc=tmp_path) == 2 * 1024 * 1024
    (tmp_path / "stat").write_text("cpu  10 0 5 80 5 0 0 0 0 0\ncpu0 5 0 2 40 3 0 0 0 0 0\n")
    before = machine_ticks(proc=tmp_path)
    assert before == (15, 100)
    assert busy_share(before, (45, 200)) == 0.3  # 30 of the 100 ticks between were busy
    # and on this very machine and process, the real files parse
    assert cpu_seconds(os.getpid()) > 0
    assert rss_bytes(os.getpid()) > 1024 * 1024
    busy, total = machine_ticks()
    assert 0 < busy < total


def _export(at: int, points: dict[str, int], events: int = 0) -> dict[str, object]:
    """One line of a <service>.metrics.jsonl file, as the ConsoleMetricExporter writes it."""
    calls = [
        {
            "attributes": {"rpc.service": s, "rpc.method": m},
            "value": v,
            "time_unix_nano": at,
        }
        for s, m, v in ((*k.split("."), v) for k, v in points.items())
    ]
    metrics = [
        {"name": "relay.aws.calls", "data": {"data_points": calls}},
        {
            "name": "relay.aws.events.sent",
            "data": {"data_points": [{"attributes": {}, "value": events, "time_unix_nano": at}]},
        },
        {"name": "http.server.request.duration", "data": {"data_points": [{"count": 9}]}},
    ]
    return {"resource_metrics": [{"scope_metrics": [{"metrics": metrics}]}]}


def test_metrics_files_give_the_latest_cumulative_counters(tmp_path: Path) -> None:
    path = tmp_path / "tasks.metrics.jsonl"
    names = frozenset({"relay.aws.calls", "relay.aws.events.sent"})
    assert latest_totals(path, names) == (0, Counter())
    first = _export(1, {"sqs.ReceiveMessage": 3})
    second = _export(2, {"sqs.ReceiveMessage": 5, "events.PutEvents": 2}, events=2)
    path.write_text(f'{json.dumps(first)}\n{json.dumps(second)}\n{{"torn')
    at, totals = latest_totals(path, names)
    assert at == 2
    assert totals == Counter(
        {
            ("relay.aws.calls", "sqs.ReceiveMessage"): 5,
            ("relay.aws.calls", "events.PutEvents"): 2,
            ("relay.aws.events.sent", ""): 2,
        }
    )
    _, before = counter_totals(first, names)
    assert difference(totals, before) == Counter(
        {
            ("relay.aws.calls", "sqs.ReceiveMessage"): 2,
            ("relay.aws.calls", "events.PutEvents"): 2,
            ("relay.aws.events.sent", ""): 2,
        }
    )


def test_sse_blocks_parse_and_history_is_not_counted_as_lag() -> None:
    assert parse_event('id: 3\nevent: task.started\ndata: {"a": 1}') == (
        "task.started",
        '{"a": 1}',
    )
    assert parse_event(": heartbeat") is None
    opened = datetime(2026, 1, 1, tzinfo=UTC)

    def arrival(event: str, occurred: datetime, after: float) -> Arrival:
        data = {"occurred_at": occurred.isoformat().replace("+00:00", "Z")}
        return Arrival(event, data, occurred.timestamp() + after)

    followed = Followed(
        opened=opened.timestamp(),
        arrivals=[
            arrival("task.submitted", opened - timedelta(seconds=5), 5.0),  # replayed history
            arrival("task.progressed", opened + timedelta(seconds=1), 0.25),
            arrival("task.succeeded", opened + timedelta(seconds=2), 0.5),
        ],
    )
    assert followed.live_lags() == pytest.approx([0.25, 0.5])
    terminal = followed.terminal()
    assert terminal is not None
    assert terminal.event == "task.succeeded"


def _span(service: str, name: str, start: float, end: float, **attributes: str) -> SpanRecord:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    return SpanRecord(
        trace_id=1,
        span_id=int(start * 1000) + 1,
        parent_id=None,
        name=name,
        kind="SERVER",
        service=service,
        start=base + timedelta(seconds=start),
        end=base + timedelta(seconds=end),
        status="UNSET",
        attributes={"relay.task_id": "t1", **attributes},
        links=[],
    )


def test_the_hop_split_adds_up_to_submit_to_terminal() -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    spans = [
        _span("gateway", "POST /v1/tasks", 0.01, 0.03),
        _span("tasks", "POST /internal/tasks", 0.015, 0.025),
        _span("tasks", "send task.submitted", 0.05, 0.08, **{"relay.event.type": "task.submitted"}),
        _span("agent", "process q-agent", 0.2, 0.3, **{"relay.event.type": "task.submitted"}),
        _span("agent", "send task.succeeded", 0.4, 0.45, **{"relay.event.type": "task.succeeded"}),
        _span("notifier", "process q-n", 0.6, 0.62, **{"relay.event.type": "task.succeeded"}),
        _span("notifier", "process q-n", 0.1, 0.11, **{"relay.event.type": "task.submitted"}),
        _span("gateway", "SELECT", 0.0, 0.5),  # a database span: no part of the split
    ]
    indexed = index_spans(spans)
    hops = hop_split(indexed["t1"], base, base + 0.7)
    assert hops is not None
    assert len(hops) == len(HOPS)
    # along the path to the terminal event: the tasks service's commit, not the gateway's 202;
    # bus hops from the send span's start, as moto delivers before PutEvents answers
    assert hops == pytest.approx([0.01, 0.015, 0.025, 0.15, 0.2, 0.2, 0.02, 0.08], abs=1e-5)
    assert sum(hops) == pytest.approx(0.7)
    del indexed["t1"]["agent send task.succeeded"]
    assert hop_split(indexed["t1"], base, base + 0.7) is None


def test_tables_and_the_report_render() -> None:
    assert cell(1234.567) == "1,234.6"
    assert cell(math.nan) == "—"
    assert cell(None) == "—"
    assert cell(3) == "3"
    assert table(["a", "b"], [[1, 2.25]], digits=2) == "| a | b |\n|---|---|\n| 1 | 2.25 |"
    with pytest.raises(ValueError, match="cells"):
        table(["a", "b"], [[1]])
    section = Section("Intake", "How.", body=["| x |"], reading="CPU.")
    text = render(Report({"CPUs (nproc)": "2"}, ["make bench"], "now", 12.0, [section]))
    assert "| CPUs (nproc) | 2 |" in text
    assert "```sh\nmake bench\n```" in text
    assert "## 1. Intake\n\nHow.\n\n| x |\n\n**Reading.** CPU." in text


async def test_the_load_generator_times_expected_answers_only() -> None:
    """Against a real socket: every answer in the window is counted by status, only the
    expected ones are timed, and throughput is timed answers per second of the window."""
    seen: list[object] = []

    async def submit(request: Request) -> JSONResponse:
        body = await request.json()
        seen.append((body, request.headers.get("authorization")))
        status = 202 if len(seen) % 2 else 503
        return JSONResponse({}, status_code=status)

    app = Starlette(routes=[Route("/v1/tasks", submit, methods=["POST"])])
    async with serve_app(app) as url:
        result = await closed_loop(
            f"{url}/v1/tasks",
            body={"prompt": "hi"},
            headers={"Authorization": "Bearer k"},
            concurrency=1,  # one worker: answers alternate 202, 503
            seconds=0.3,
            warmup=0.1,
        )
    assert seen[0] == ({"prompt": "hi"}, "Bearer k")
    assert set(result.statuses) == {202, 503}
    assert abs(result.statuses[202] - result.statuses[503]) <= 1
    assert len(result.latencies) == result.statuses[202]
    assert sum(result.statuses.values()) < len(seen)  # the warm-up's answers are not counted
    assert result.throughput == pytest.approx(len(result.latencies) / 0.3)
    assert all(0 < took < 0.3 for took in result.latencies)
