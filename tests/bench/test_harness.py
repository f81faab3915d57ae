"""The bench harness's own logic: percentiles, /proc parsing, metrics files, SSE parsing, the
WebSocket follower, fan-out's figures, the hop split, webhooks' figures and the report. Fast and
offline; the bench itself runs in `make bench` only."""

from __future__ import annotations

import asyncio
import functools
import json
import math
import os
import resource
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from relay_devkit.bench.concurrency import agent_runs
from relay_devkit.bench.fanout import (
    Level,
    OpenWatch,
    Series,
    SteadyCpu,
    kib_per_connection,
    paired_delays,
    steady_cpu,
)
from relay_devkit.bench.latency import HOPS, hop_split, index_spans
from relay_devkit.bench.loadgen import closed_loop
from relay_devkit.bench.metrics_files import counter_totals, difference, latest_totals
from relay_devkit.bench.procstat import (
    busy_share,
    cpu_seconds,
    environ,
    machine_ticks,
    open_files_limit,
    raise_open_files_limit,
    rss_bytes,
)
from relay_devkit.bench.report import Report, Section, cell, render, table
from relay_devkit.bench.sse import Arrival, Followed, parse_event
from relay_devkit.bench.stats import Latency, percentile, ratio
from relay_devkit.bench.webhooks import (
    HEALTHY,
    Attempts,
    Hook,
    Measured,
    SideBySide,
    Throughput,
    attempts_in,
    delivery_settings,
    first_arrivals,
    hooks,
    latest_attempts,
    rate,
    side_by_side,
    sse_rate,
    until,
)
from relay_devkit.bench.webhooks import _section as webhooks_section
from relay_devkit.bench.ws import EVENT, SubscriptionFailed, follow_ws, parse_frame, ws_url
from relay_devkit.receiver import Received, serve_receiver
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


def test_environment_and_open_file_limit_read_from_proc(tmp_path: Path) -> None:
    proc = tmp_path / "42"
    proc.mkdir()
    (proc / "environ").write_bytes(b"A=1\0KEY=x=y\0EMPTY=\0junk\0")
    assert environ(42, proc=tmp_path) == {"A": "1", "KEY": "x=y", "EMPTY": ""}
    limits = (
        "Limit                     Soft Limit           Hard Limit           Units     \n"
        "Max open files            1024                 524288               files     \n"
    )
    (proc / "limits").write_text(limits)
    assert open_files_limit(42, proc=tmp_path) == 1024
    (proc / "limits").write_text(limits.replace("1024 ", "unlimited"))
    assert open_files_limit(42, proc=tmp_path) is None
    # and on this very process: the real files parse, and raising never lowers the limit
    assert environ(os.getpid())["PATH"] == os.environ["PATH"]
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert open_files_limit(os.getpid()) in (soft, None)
    assert raise_open_files_limit(1) == soft
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == soft


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


def _event(kind: str, seq: int, occurred: float) -> dict[str, object]:
    """A timeline event as the notifier sends it on a WebSocket (the SSE data: JSON)."""
    at = datetime.fromtimestamp(occurred, UTC).isoformat().replace("+00:00", "Z")
    return {"type": kind, "seq": seq, "task_id": "t1", "occurred_at": at, "data": {}}


def test_websocket_frames_and_urls() -> None:
    event = _event("task.progressed", 3, 0.0)
    assert parse_frame(json.dumps(event)) == (EVENT, event)
    assert parse_frame(b'{"type": "subscribed", "task_id": "t1"}')[0] == "subscribed"
    assert parse_frame('{"type": "end", "task_id": "t1"}')[0] == "end"
    with pytest.raises(ValueError, match="not a frame"):
        parse_frame("[1]")
    assert ws_url("http://127.0.0.1:8000/", "/v1/ws") == "ws://127.0.0.1:8000/v1/ws"
    assert ws_url("https://relay.example", "/v1/ws") == "wss://relay.example/v1/ws"
    with pytest.raises(ValueError, match="HTTP"):
        ws_url("ws://127.0.0.1", "/v1/ws")


async def test_the_websocket_follower_counts_live_events_only() -> None:
    """Against a real socket: the follower subscribes with its headers, is open at
    ``subscribed``, keeps every event, counts as lag only those that occurred after it opened,
    and stops at ``end``; an ``error`` frame or a close before ``end`` is a failure."""
    seen: list[object] = []

    async def live(websocket: WebSocket) -> None:
        await websocket.accept()
        seen.append(websocket.headers.get("authorization"))
        frame = json.loads(await websocket.receive_text())
        seen.append(frame)
        if frame["task_id"] == "refused":
            await websocket.send_json({"type": "error", "status": 404, "title": "Not Found"})
        elif frame["task_id"] == "t1":
            now = datetime.now(UTC).timestamp()
            await websocket.send_json({"type": "subscribed", "task_id": "t1"})
            await websocket.send_json(_event("task.submitted", 1, now - 60))  # history
            await asyncio.sleep(0.05)
            await websocket.send_json(_event("task.progressed", 2, datetime.now(UTC).timestamp()))
            await websocket.send_json({"type": "end", "task_id": "t1"})
        await websocket.close()

    app = Starlette(routes=[WebSocketRoute("/ws", live)])
    async with serve_app(app) as url:
        opened = asyncio.Event()
        followed = await follow_ws(
            ws_url(url, "/ws"), "t1", headers={"Authorization": "Bearer k"}, opened=opened
        )
        assert opened.is_set()
        with pytest.raises(SubscriptionFailed, match="404"):
            await follow_ws(ws_url(url, "/ws"), "refused", headers={})
        with pytest.raises(SubscriptionFailed, match="closed before end"):
            await follow_ws(ws_url(url, "/ws"), "gone", headers={})
    assert seen[:2] == ["Bearer k", {"type": "subscribe", "task_id": "t1", "after": 0}]
    assert [a.event for a in followed.arrivals] == ["task.submitted", "task.progressed"]
    assert followed.arrivals[0].data["seq"] == 1
    lags = followed.live_lags()
    assert len(lags) == 1
    assert 0 <= lags[0] < 1


def test_fan_out_memory_per_connection_and_lag_over_followers() -> None:
    assert kib_per_connection((1, 100.0), (1001, 150.0)) == pytest.approx(51.2)
    assert kib_per_connection((1, 100.0), (1001, 99.0)) < 0  # reported as measured
    assert math.isnan(kib_per_connection((1, 100.0), (1, 120.0)))

    occurred = datetime(2026, 1, 1, tzinfo=UTC)
    data = {"occurred_at": occurred.isoformat().replace("+00:00", "Z")}

    def followed(*lags: float) -> Followed:
        at = occurred.timestamp()
        return Followed(opened=at, arrivals=[Arrival("e", data, at + lag) for lag in lags])

    one = Level(1, [followed(0.1, 0.3)], Counter(), 0.5, {"gateway": 100.0})
    many = Level(
        101, [followed(0.2), followed(0.4, 0.6)], Counter({"X": 2}), 3.0, {"gateway": 110.0}
    )
    assert one.lag.count == 2
    assert one.lag.p50 == pytest.approx(0.2)
    assert (many.lag.count, many.failed) == (3, 2)
    assert many.lag.p50 == pytest.approx(0.4)
    series = Series("SSE", follow_ws, [one, many])  # type: ignore[arg-type]  # never started
    assert series.kib_per_connection("gateway") == pytest.approx(102.4)


def test_steady_lag_counts_only_events_after_the_last_stream_opened() -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC).timestamp()

    def arrival(occurred: float, received: float) -> Arrival:
        at = datetime.fromtimestamp(base + occurred, UTC).isoformat().replace("+00:00", "Z")
        return Arrival("e", {"occurred_at": at}, base + received)

    early = Followed(opened=base, arrivals=[arrival(1, 3.0), arrival(5, 5.1)])
    late = Followed(opened=base + 2, arrivals=[arrival(1, 2.0), arrival(5, 5.3)])
    level = Level(2, [early, late], Counter(), 2.0, {})
    # live lags: early's event 1 (2 s: a follower was still connecting) and both of event 5
    assert level.lag.count == 3
    assert level.lag.p99 == pytest.approx(2.0, abs=0.05)
    # once both were open, only event 5: 0.1 and 0.3 s
    assert level.steady_lag.count == 2
    assert level.steady_lag.p50 == pytest.approx(0.2)


def test_cpu_per_delivery_counts_what_arrived_once_every_stream_was_open() -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    data = {"occurred_at": datetime.fromtimestamp(base, UTC).isoformat()}
    arrivals = [Arrival("e", data, base + t) for t in (1.0, 2.5, 3.0)]
    followed = [Followed(opened=base, arrivals=arrivals), Followed(opened=base + 2)]
    level = Level(2, followed, Counter(), 2.0, {}, steady=SteadyCpu(base + 2, {"notifier": 0.2}))
    assert level.steady_deliveries == 2  # the one before base + 2 was sent while connecting
    assert level.cpu_per_delivery("notifier") == pytest.approx(0.1)
    assert math.isnan(Level(2, followed, Counter(), 2.0, {}).cpu_per_delivery("notifier"))


async def test_the_steady_window_starts_when_the_last_follower_opens_or_fails() -> None:
    watch = OpenWatch(3)
    gates = [asyncio.Event() for _ in range(3)]
    finish = asyncio.Event()

    async def opens(gate: asyncio.Event, opened: asyncio.Event) -> Followed:
        await gate.wait()
        opened.set()
        await finish.wait()  # still following after it opened
        return Followed()

    async def fails(gate: asyncio.Event, opened: asyncio.Event) -> Followed:
        await gate.wait()
        raise ConnectionError("refused")

    starts = [opens, opens, fails]
    followers = [
        asyncio.create_task(watch.watching(functools.partial(start, gate))(asyncio.Event()))
        for start, gate in zip(starts, gates, strict=True)
    ]
    async with steady_cpu({"me": os.getpid()}, watch.everyone) as measured:
        for gate in gates[:2]:
            gate.set()
            await asyncio.sleep(0.01)
            assert not watch.everyone.is_set()
        gates[2].set()  # the last one fails without opening: the window starts all the same
        await asyncio.wait_for(watch.everyone.wait(), 1)  # while two are still following
        finish.set()
        await asyncio.gather(*followers, return_exceptions=True)
    assert len(measured) == 1
    assert measured[0].cpu["me"] >= 0

    never = OpenWatch(1)
    async with steady_cpu({"me": os.getpid()}, never.everyone) as nothing:
        pass
    assert nothing == []


def test_the_relays_delay_is_paired_event_for_event() -> None:
    """Each live event's arrival at each follower minus its arrival at the probe; history
    (before either opened) and events the probe did not get are left out."""
    base = datetime(2026, 1, 1, tzinfo=UTC).timestamp()

    def arrival(seq: int, occurred: float, received: float) -> Arrival:
        at = datetime.fromtimestamp(base + occurred, UTC).isoformat().replace("+00:00", "Z")
        return Arrival("e", {"seq": seq, "occurred_at": at}, base + received)

    probe = Followed(
        opened=base + 1,
        arrivals=[arrival(1, 0, 1.0), arrival(2, 2, 2.1), arrival(3, 3, 3.1)],
    )
    early = Followed(
        opened=base + 0.5,
        arrivals=[arrival(1, 0, 0.6), arrival(2, 2, 2.3), arrival(3, 3, 3.2), arrival(4, 4, 4.5)],
    )
    late = Followed(opened=base + 2.5, arrivals=[arrival(2, 2, 2.6), arrival(3, 3, 3.5)])
    # seq 1 is history for the probe, seq 4 it never got, seq 2 is history for `late`
    assert paired_delays([early, late], probe) == pytest.approx([0.2, 0.1, 0.4], abs=1e-5)
    assert paired_delays([], probe) == []


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


def test_an_agent_run_is_split_into_the_emulators_calls_and_the_agents_own_time() -> None:
    submitted = {"relay.event.type": "task.submitted"}
    spans = [
        # a later delivery of the same task (a redelivery), written first: not its first run
        _span("agent", "process q-agent", 6.0, 6.5, **submitted),
        _span("agent", "process q-agent", 1.0, 5.0, **submitted),
        replace(_span("agent", "chat scripted", 1.1, 3.1), kind="CLIENT"),
        replace(_span("agent", "S3.PutObject", 3.2, 3.5), kind="CLIENT"),  # the emulator's
        replace(_span("agent", "SQS.ChangeMessageVisibility", 4.0, 4.1), kind="CLIENT"),
        # after the run (the outbox's send) or another service's: not the run's calls
        replace(_span("agent", "EventBridge.PutEvents", 5.1, 5.3), kind="CLIENT"),
        replace(_span("artifacts", "S3.GetObject", 3.6, 3.9), kind="CLIENT"),
        # a database or tool span inside the run stays the agent's own time
        _span("agent", "execute_tool write_file", 3.1, 3.6),
        # another task's run, in another trace
        replace(
            _span("agent", "process q-agent", 2.0, 4.0, **submitted),
            trace_id=2,
            attributes={"relay.task_id": "t2", **submitted},
        ),
    ]
    runs = agent_runs(spans)
    assert set(runs) == {"t1", "t2"}
    assert runs["t1"].held == pytest.approx(4.0)
    assert runs["t1"].aws == pytest.approx(0.4)
    assert runs["t1"].own == pytest.approx(3.6)
    assert (runs["t2"].held, runs["t2"].aws) == pytest.approx((2.0, 0.0))


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


async def test_keyed_load_sends_a_new_idempotency_key_with_every_request() -> None:
    seen: list[tuple[str | None, str | None]] = []

    async def submit(request: Request) -> JSONResponse:
        seen.append((request.headers.get("idempotency-key"), request.headers.get("authorization")))
        return JSONResponse({}, status_code=202)

    app = Starlette(routes=[Route("/v1/tasks", submit, methods=["POST"])])
    async with serve_app(app) as url:
        for keyed in (True, False):
            seen.clear()
            await closed_loop(
                f"{url}/v1/tasks",
                body={"prompt": "hi"},
                headers={"Authorization": "Bearer k"},
                concurrency=2,
                seconds=0.2,
                warmup=0.0,
                keyed=keyed,
            )
            keys = [key for key, _ in seen]
            assert {auth for _, auth in seen} == {"Bearer k"}
            if keyed:
                assert None not in keys
                assert len(set(keys)) == len(keys) > 2
            else:
                assert set(keys) == {None}


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def _delivery(path: str, event_id: str, occurred: float, at: float, task: str = "t1") -> Received:
    """A request as the receiver records it: the timeline event's client JSON as the body."""
    body = {"type": "e", "seq": 1, "task_id": task, "occurred_at": _iso(occurred)}
    return Received(path, {}, json.dumps({**body, "event_id": event_id}).encode(), at)


def test_webhook_deliveries_pair_with_the_same_events_on_sse() -> None:
    """Latency from the body's occurred_at to the first arrival of each webhook-id; SSE counts
    only events live on their stream, and so does the like-for-like webhook figure; the paired
    difference is per event id; a timeline event never delivered is counted as missing."""
    base = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    received = [
        _delivery(f"{HEALTHY}/x", "e1", base + 0, base + 1.5),  # history on SSE
        _delivery(f"{HEALTHY}", "e2", base + 2, base + 2.3),
        _delivery(f"{HEALTHY}", "e2", base + 2, base + 9.0),  # an at-least-once repeat
        _delivery("/hang/bench", "e3", base + 3, base + 3.1),  # another endpoint
    ]
    delivered = hooks(received, HEALTHY)
    assert [h.event_id for h in delivered] == ["e1", "e2", "e2"]
    assert delivered[0] == Hook("e1", "t1", base, base + 1.5)
    first = first_arrivals(reversed(delivered))
    assert first["e2"].at == base + 2.3

    def arrival(event_id: str, occurred: float, received: float) -> Arrival:
        return Arrival("e", {"event_id": event_id, "occurred_at": _iso(base + occurred)}, received)

    stream = Followed(
        opened=base + 1,
        arrivals=[
            arrival("e1", 0, base + 1.0),  # history: not live
            arrival("e2", 2, base + 2.1),
            arrival("e3", 3, base + 3.2),  # never delivered to the healthy endpoint
        ],
    )
    compared = side_by_side([stream], first)
    assert compared.sse == pytest.approx([0.1, 0.2])
    assert compared.webhook_same == pytest.approx([0.3])
    assert sorted(compared.webhook_all) == pytest.approx([0.3, 1.5])
    assert compared.paired == pytest.approx([0.2])
    assert (compared.events, compared.missing) == (3, 1)
    # every timeline event once, first to last arrival on the streams: 3 over 2.2 s
    assert sse_rate([stream]) == pytest.approx(3 / 2.2)


def _histogram(succeeded: tuple[float, int], retrying: tuple[float, int]) -> dict[str, object]:
    """One line of notifier.metrics.jsonl holding the attempt-duration histogram."""
    points = [
        {"attributes": {"outcome": outcome}, "sum": total, "count": count, "bucket_counts": []}
        for outcome, (total, count) in (("succeeded", succeeded), ("retrying", retrying))
    ]
    metrics = [
        {"name": "relay.webhooks.backlog", "data": {"data_points": [{"value": 3}]}},
        {"name": "relay.webhooks.attempt.duration", "data": {"data_points": points}},
    ]
    return {"resource_metrics": [{"scope_metrics": [{"metrics": metrics}]}]}


def test_webhook_throughput_post_times_and_settings(tmp_path: Path) -> None:
    hook = Hook("e1", "t1", 0.0, 11.0)
    phase = Throughput.of("burst", 3, [hook, Hook("e2", "t1", 0.0, 12.0), hook], began=10.0)
    assert (phase.requests, phase.events, phase.seconds) == (3, 2, 2.0)
    assert phase.per_second == 1.0
    assert math.isnan(phase.cpu_ms_per_delivery)  # no CPU measured
    assert math.isnan(phase.in_flight)  # no POST times
    live = Throughput.of("live", 2, [hook, Hook("e2", "t1", 0.0, 13.0)])
    assert (live.began, live.per_second) == (11.0, 1.0)  # from the first arrival
    assert math.isnan(Throughput.of("none", 0, []).per_second)
    assert rate(10, 1.0, 3.0) == 5.0
    assert math.isnan(rate(1, 2.0, 2.0))

    # POST times: successful attempts only, cumulative, so a phase is a difference
    path = tmp_path / "notifier.metrics.jsonl"
    assert latest_attempts(path) == Attempts()  # telemetry elsewhere: nothing, not a failure
    assert attempts_in({"resource_metrics": []}) is None
    first = _histogram(succeeded=(0.5, 10), retrying=(30.0, 3))
    second = _histogram(succeeded=(2.0, 40), retrying=(40.0, 4))
    without: dict[str, object] = {"resource_metrics": [{"scope_metrics": [{"metrics": []}]}]}
    path.write_text(f"{json.dumps(first)}\n{json.dumps(second)}\n{json.dumps(without)}\n{{torn")
    assert latest_attempts(path) == Attempts(2.0, 40)
    during = latest_attempts(path) - Attempts(0.5, 10)
    assert during.count == 30
    assert during.mean == pytest.approx(0.05)
    assert math.isnan(Attempts().mean)
    # 3 requests in 2 s, each POST 0.05 s: 0.075 in flight on average
    assert replace(phase, attempts=during).in_flight == pytest.approx(0.075)

    env = {"RELAY_WEBHOOKS_ENDPOINT_CONCURRENCY": "8", "RELAY_WEBHOOKS_CONCURRENCY": ""}
    settings = delivery_settings(env)
    assert settings["webhooks_endpoint_concurrency"] == 8.0
    assert settings["webhooks_concurrency"] > 0  # empty means the default, as for the services
    assert settings["webhooks_timeout_seconds"] > 0


async def test_the_real_receiver_records_what_the_bench_reads() -> None:
    """Against the receiver the scenario uses: what is POSTed under the healthy path is read
    back as deliveries; ``until`` waits for a condition or gives up at its deadline."""
    occurred = datetime.now(UTC).timestamp()
    async with serve_receiver() as receiver, aiohttp.ClientSession() as session:
        for event_id, path in (("e1", HEALTHY), ("e2", HEALTHY), ("e3", "/ok/other")):
            body = {"task_id": "t1", "occurred_at": _iso(occurred), "event_id": event_id}
            async with session.post(f"{receiver.url}{path}", json=body) as response:
                assert response.status == 204
        assert await until(lambda: len(receiver.received) == 3, within=5)
        assert not await until(lambda: len(receiver.received) > 3, within=0.1)
    delivered = hooks(receiver.received, HEALTHY)
    assert [h.event_id for h in delivered] == ["e1", "e2"]
    assert all(0 <= h.at - h.occurred < 5 for h in delivered)


def test_the_webhooks_section_renders_every_branch() -> None:
    """Tables have a cell per header whatever was measured, and the reading follows the
    figures: the webhook before or after SSE, the per-endpoint bound reached or not, a hanging
    endpoint within its bound or retried past it, POST times missing."""
    compared = SideBySide([0.1, 0.2], [0.15, 0.3], [0.15, 0.3, 1.0], [0.05, -0.1], 3, 1)
    live = Throughput("live", 3, 3, 3, 0.0, 3.0, cpu=0.03, attempts=Attempts(0.03, 3))
    # 30 deliveries/s, each POST 0.12 s: 3.6 in flight on average
    alone = Throughput("burst", 3, 3, 3, 10.0, 10.1, cpu=0.003, attempts=Attempts(0.36, 3))
    beside = Throughput("beside", 3, 2, 2, 20.0, 20.2, cpu=0.002)
    bounds = {
        "webhooks_concurrency": 32.0,
        "webhooks_endpoint_concurrency": 4.0,
        "webhooks_timeout_seconds": 10.0,
    }

    def render(burst: Throughput, hanging: int) -> str:
        measured = Measured(40, compared, 1.1, live, burst, replace(beside, hanging=hanging))
        section = webhooks_section(measured, bounds)
        return "\n".join([section.method, *section.body, section.reading])

    text = render(alone, 9)
    assert "RELAY_WEBHOOKS_ENDPOINT_CONCURRENCY=4 to one endpoint" in text
    assert "| live | 3 | 0 | 3.0 | 1.0 | — | 10.0 | 0.0 |" in text  # no ratio to itself
    assert "1 of 3 timeline events were not delivered" in text
    assert "beside: 2 of 3 queued deliveries arrived" in text
    assert "the webhook arrived 25.0 ms before SSE at p50" in text
    assert "3.6 were in flight of the 4 one endpoint may have" in text
    assert "that bound and the receiver's answers paced the burst" in text
    assert "more than its bound of 4 at once" in text
    text = render(replace(alone, attempts=Attempts(0.03, 3)), 4)
    assert "the worker's own" in text
    assert "within its bound of 4 attempts at once" in text
    assert "POST itself" not in render(replace(alone, attempts=Attempts()), 4)
