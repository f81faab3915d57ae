"""One trace per task across the five service processes of `relay up`, read back from the span
files the services write (as `relay trace` does), and log lines that carry its id."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from typing import Any

import pytest

from relay_devkit.api_client import PublicApi
from relay_devkit.testing import eventually
from relay_ops.stack.config import SERVICES
from relay_ops.stack.process import RELAY, RunningStack
from relay_ops.traces import SpanRecord, Trace, load_spans, task_traces

pytestmark = pytest.mark.e2e

PROMPT = "Trace this task.\n/steps 2\n/artifact notes.md"


def _complete(trace: Trace) -> bool:
    """Every service has written its part: the notifier has recorded the terminal event, and
    every span's parent is in the files too. Each process exports its spans in batches on its
    own schedule, so a consumer's span can be written before its producer's send span is."""
    return (
        trace.services >= set(SERVICES)
        and any(
            s.service == "notifier" and s.attributes.get("relay.event.type") == "task.succeeded"
            for s in trace.spans
        )
        and len(trace.roots()) == 1
    )


async def _the_trace(stack: RunningStack, task_id: str) -> Trace:
    async def found() -> list[Trace]:
        return task_traces(load_spans(stack.config.telemetry_dir), task_id)

    traces = await eventually(found, until=lambda ts: any(_complete(t) for t in ts), within=30)
    [trace] = [t for t in traces if _complete(t)]
    return trace


async def test_one_task_is_one_trace_through_all_five_services(
    stack: RunningStack, api: PublicApi
) -> None:
    submitted_at = int(time.time())
    task = await api.submit(PROMPT)
    await api.finished_task(task["id"])
    trace = await _the_trace(stack, task["id"])

    # it starts at the client's POST on the gateway, and every other span hangs from it
    [root] = trace.roots()
    assert (root.service, root.kind, root.name) == ("gateway", "SERVER", "POST /v1/tasks")
    assert all(s.parent_id is not None for s in trace.spans if s is not root)
    assert submitted_at - 1 <= trace.trace_id >> 96 <= int(time.time())  # X-Ray-compatible

    # each bus hop: a consumer's process span is the child of the producer's send span
    hops = [s for s in trace.spans if s.kind == "CONSUMER"]
    consumers = {s.service for s in hops}
    assert consumers == {"tasks", "agent", "notifier", "artifacts"}
    for process in hops:
        send = _parent(trace, process)
        assert send.kind == "PRODUCER", process.name
        assert send.name == f"send {process.attributes['relay.event.type']}"
        assert send.service != process.service  # the producer's relay sent it

    # the POST reached tasks over internal HTTP, inside the same trace
    tasks_server = [s for s in trace.spans if s.service == "tasks" and s.kind == "SERVER"]
    assert [_parent(trace, s).service for s in tasks_server] == ["gateway"]

    # the agent: a client span per model call and a span per tool call, under its process span
    calls = [s for s in trace.spans if s.name.startswith("chat ")]
    tools = [s for s in trace.spans if s.name.startswith("execute_tool ")]
    assert len(calls) == 3  # /steps 2: two tool-using turns and the final answer
    assert {s.attributes["gen_ai.tool.name"] for s in tools} == {"list_files", "write_file"}
    for span in calls + tools:
        assert span.service == "agent"


def _parent(trace: Trace, span: SpanRecord) -> SpanRecord:
    assert span.parent_id is not None
    parent = trace.span(span.parent_id)
    assert parent is not None, f"{span.name}: parent not recorded"
    return parent


async def test_relay_trace_prints_the_task_trace(stack: RunningStack, api: PublicApi) -> None:
    task = await api.submit(PROMPT)
    await api.finished_task(task["id"])
    trace = await _the_trace(stack, task["id"])
    done = await asyncio.to_thread(
        subprocess.run,
        [RELAY, "trace", task["id"], "--telemetry-dir", str(stack.config.telemetry_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**stack.environment, "COLUMNS": "200"},
    )
    assert trace.xray_id in done.stdout
    lines = done.stdout.splitlines()
    for service in SERVICES:
        assert any(service in line for line in lines), service
    assert any("POST /v1/tasks" in line for line in lines)
    assert any("ms" in line and "send task.submitted" in line for line in lines)


async def test_service_log_lines_are_json_with_the_task_and_its_trace_id(
    stack: RunningStack, api: PublicApi
) -> None:
    task = await api.submit(PROMPT)
    await api.finished_task(task["id"])
    trace = await _the_trace(stack, task["id"])

    lines = _json_lines(stack, "agent")
    about = [line for line in lines if line.get("task_id") == task["id"]]
    assert about, "the agent logged nothing about the task"
    started = [line for line in about if "attempt 1 started" in line["message"]]
    assert len(started) == 1
    assert started[0]["trace_id"] == trace.xray_id
    assert started[0]["service"] == "agent"
    assert started[0]["level"] == "INFO"


def _json_lines(stack: RunningStack, service: str) -> list[dict[str, Any]]:
    """The service's log lines; the supervisor prefixes nothing, so each is a JSON object."""
    out = []
    for text in (stack.config.log_dir / f"{service}.log").read_text().splitlines():
        if text.startswith("{"):
            out.append(json.loads(text))
    return out
