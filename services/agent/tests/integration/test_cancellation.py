"""Cancellation with a contract against real PostgreSQL (NOTIFY/LISTEN) and moto (SQS): the
replica that runs the task stops it within 5 s, whichever replica got the cancel request."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import pytest
from pydantic import BaseModel

from agent.cancel_listener import CancelListener
from agent.handlers import event_dispatcher
from agent.providers.base import ModelReply, ToolUseBlock
from agent.repository import PostgresRuns
from agent.tools import TOOLS, ToolOutcome, define_tool
from relay_devkit.testing import eventually
from relay_shared.events import (
    TaskCancelRequested,
    TaskCancelRequestedData,
    TaskSubmitted,
    TaskSubmittedData,
)

from .conftest import loop_of

pytestmark = pytest.mark.integration

CONTRACT_SECONDS = 5.0
TERMINAL = {"task.succeeded", "task.failed", "task.cancelled"}


def _submitted(prompt: str = "Long work") -> TaskSubmitted:
    return TaskSubmitted.create(
        TaskSubmittedData(prompt=prompt, model="scripted"), tenant_id="acme", task_id=uuid.uuid4()
    )


def _cancel(event: TaskSubmitted, reason: str | None = "stop") -> TaskCancelRequested:
    return TaskCancelRequested.create(
        TaskCancelRequestedData(reason=reason),
        tenant_id="acme",
        task_id=event.metadata.task_id,
        caused_by=event.metadata,
    )


def _terminal(names: list[str]) -> list[str]:
    return [n for n in names if n in TERMINAL]


async def test_cancel_while_queued_means_it_never_starts(runtime, counting) -> None:
    provider = counting()
    service = runtime.service(provider)
    event = _submitted("/steps 1")

    await service.cancellation.request(_cancel(event, "too late"))
    await service.cancellation.request(_cancel(event, "again"))  # repeated: nothing more
    await service.runner.run(event)

    assert provider.calls == 0
    rows = await runtime.outbox()
    assert [r["detail_type"] for r in rows] == ["task.cancelled"]
    data = rows[0]["detail"]["data"]
    assert (data["attempt"], data["reason"]) == (0, "too late")
    run = await runtime.run_row(event.metadata.task_id)
    assert run is not None
    assert (run["status"], run["attempt"], run["worker_id"]) == ("cancelled", 0, None)


async def test_only_the_first_cancel_request_of_a_running_task_signals(runtime) -> None:
    event = _submitted()
    runs = PostgresRuns(runtime.database)
    async with runs.transaction() as tx:
        await tx.claim(
            event.metadata.task_id,
            "acme",
            worker_id="agent-a",
            lease_seconds=30,
            wall_seconds=60,
            submitted={},
        )
    effects = []
    for reason in ("first", "second"):
        async with runs.transaction() as tx:
            effects.append((await tx.request_cancel(event.metadata.task_id, "acme", reason)).effect)
    async with runs.transaction() as tx:
        other_tenant = await tx.request_cancel(event.metadata.task_id, "globex", "x")

    assert effects == ["signalled", "ignored"]
    assert other_tenant.effect == "ignored"
    run = await runtime.run_row(event.metadata.task_id)
    assert run is not None
    assert (run["status"], run["cancel_reason"]) == ("running", "first")


async def test_the_cancel_reaches_the_replica_running_the_task(
    runtime, serving, publish, blocked, queue_depth
) -> None:
    """Two agent processes on one database; the cancel request is handled by the one that is
    NOT running the task; its NOTIFY reaches the other, which closes the model call."""
    first, second = blocked(), blocked()
    event = _submitted()
    async with (
        serving(first, worker_id="agent-a") as app_a,
        serving(second, worker_id="agent-b") as app_b,
    ):
        await publish(event)
        await eventually(lambda: _any_called(first, second), within=30, interval=0.05)
        runner, bystander = (first, app_b) if first.called.is_set() else (second, app_a)
        bystander_provider = second if runner is first else first

        loop = asyncio.get_running_loop()
        asked_at = loop.time()
        await event_dispatcher(bystander.state.service).dispatch(_cancel(event))
        await asyncio.wait_for(runner.cancelled.wait(), CONTRACT_SECONDS + 5)

        assert runner.cancelled_at is not None
        assert runner.cancelled_at - asked_at < CONTRACT_SECONDS
        assert bystander_provider.calls == 0
        names = await eventually(runtime.emitted, until=lambda n: "task.cancelled" in n, within=10)
        # the handler returned normally: the task.submitted message is acknowledged
        await eventually(queue_depth, until=lambda d: d == (0, 0), within=15)

    assert names == ["task.started", "task.cancelled"]
    run = await runtime.run_row(event.metadata.task_id)
    assert run is not None
    assert (run["status"], run["attempt"], run["cancel_reason"]) == ("cancelled", 1, "stop")


async def _any_called(*providers) -> bool:
    return any(p.called.is_set() for p in providers)


class _Nothing(BaseModel):
    pass


async def test_cancel_through_the_bus_reaches_a_worker_whose_every_slot_is_busy(
    runtime, serving, publish, counting, queue_depth
) -> None:
    """One slot, taken by a tool that runs until stopped: the cancel comes in on the control
    queue all the same, and the tool is interrupted."""
    tool_running, tool_cancelled = asyncio.Event(), asyncio.Event()

    async def hang(_workspace, _args) -> ToolOutcome:
        tool_running.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            tool_cancelled.set()
            raise
        raise AssertionError("unreachable")

    class CallsTheHangingTool:
        async def complete(self, request):
            return ModelReply(
                content=[ToolUseBlock(id="toolu_hang", name="hang", input={})],
                stop_reason="tool_use",
            )

    event = _submitted()
    tools = {**TOOLS, "hang": define_tool("hang", "Waits.", _Nothing, hang)}
    async with serving(CallsTheHangingTool(), tools=tools, consumer_concurrency=1):
        await publish(event)
        await asyncio.wait_for(tool_running.wait(), 30)
        await publish(_cancel(event, None))
        await asyncio.wait_for(tool_cancelled.wait(), 30)
        names = await eventually(runtime.emitted, until=lambda n: bool(_terminal(n)), within=10)
        await eventually(lambda: queue_depth("agent-control"), until=lambda d: d == (0, 0))

    assert names == ["task.started", "task.cancelled"]
    assert Counter(_terminal(await runtime.emitted())) == {"task.cancelled": 1}


async def test_the_listener_reconnects_after_losing_its_connection(
    runtime, serving, blocked
) -> None:
    provider = blocked()
    event = _submitted()
    async with serving(provider, worker_id="agent-a") as app:
        listener = loop_of(app, CancelListener)
        await runtime.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE query ILIKE 'LISTEN%%' AND datname = current_database()"
        )
        await eventually(lambda: _is_false(listener.listening), within=10)
        await eventually(lambda: _is_true(listener.listening), within=15)

        run = asyncio.create_task(event_dispatcher(app.state.service).dispatch(event))
        await asyncio.wait_for(provider.called.wait(), 10)
        # the cancel is recorded by another process: only the NOTIFY can reach this one
        await runtime.service(blocked()).cancellation.request(_cancel(event))
        await asyncio.wait_for(run, CONTRACT_SECONDS)

    assert _terminal(await runtime.emitted()) == ["task.cancelled"]


async def _is_true(flag: asyncio.Event) -> bool:
    return flag.is_set()


async def _is_false(flag: asyncio.Event) -> bool:
    return not flag.is_set()
