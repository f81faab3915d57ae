"""Cancellation with a contract, and the difference between a cancel and a shutdown, through
the service with in-memory runs (NOTIFY is delivered on commit, as the listener would)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from pydantic import BaseModel

from agent.providers.base import ModelReply, ModelRequest, ToolUseBlock
from agent.providers.scripted import ScriptedProvider
from agent.running import RunningAttempts, StopCause
from agent.tools import TOOLS, ToolOutcome, define_tool
from relay_shared.events import TaskCancelled, Usage

WITHIN = 5  # seconds the contract allows from the cancel to the model stream being closed


def _only_terminal(h) -> TaskCancelled:
    [terminal] = h.runs.terminal()
    assert isinstance(terminal, TaskCancelled)
    return terminal


async def test_a_task_cancelled_while_queued_never_starts(
    harness, recording, make_submitted, make_cancel
) -> None:
    provider = recording(ScriptedProvider())
    h = harness(provider)
    event = make_submitted("/steps 1")

    await h.service.cancellation.request(make_cancel(event.metadata.task_id, "not needed"))
    await h.service.runner.run(event)  # the task.submitted that was still queued

    assert provider.requests == []
    assert h.runs.names() == ["task.cancelled"]
    cancelled = _only_terminal(h)
    assert (cancelled.data.attempt, cancelled.data.reason, cancelled.data.steps) == (
        0,
        "not needed",
        0,
    )
    assert cancelled.metadata.correlation_id == event.metadata.correlation_id
    assert h.runs.rows[event.metadata.task_id]["status"] == "cancelled"


async def test_cancel_while_the_model_call_is_open(
    harness, blocked, make_submitted, make_cancel
) -> None:
    provider = blocked()
    h = harness(provider)
    event = make_submitted()
    run = asyncio.create_task(h.service.runner.run(event))
    await asyncio.wait_for(provider.called.wait(), WITHIN)

    await h.service.cancellation.request(make_cancel(event.metadata.task_id))
    await asyncio.wait_for(run, WITHIN)  # the handler returns: the message is acknowledged

    assert provider.cancelled.is_set()
    assert h.runs.names() == ["task.started", "task.cancelled"]
    cancelled = _only_terminal(h)
    assert (cancelled.data.attempt, cancelled.data.reason) == (1, "changed my mind")
    assert h.runs.rows[event.metadata.task_id]["status"] == "cancelled"
    assert h.service.running.task_ids() == []


class _Nothing(BaseModel):
    pass


async def test_cancel_while_a_tool_runs(harness, recording, make_submitted, make_cancel) -> None:
    tool_started, tool_cancelled = asyncio.Event(), asyncio.Event()

    async def slow(_workspace, _args) -> ToolOutcome:
        tool_started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            tool_cancelled.set()
            raise
        raise AssertionError("unreachable")

    first_step = ModelReply(
        content=[
            ToolUseBlock(id="toolu_w", name="write_file", input={"path": "a.md", "content": "A"})
        ],
        stop_reason="tool_use",
    )
    second_step = ModelReply(
        content=[ToolUseBlock(id="toolu_s", name="slow", input={})], stop_reason="tool_use"
    )
    provider = recording(replies=[first_step, second_step])
    h = harness(provider, tools={**TOOLS, "slow": define_tool("slow", "Slow.", _Nothing, slow)})
    event = make_submitted()
    run = asyncio.create_task(h.service.runner.run(event))
    await asyncio.wait_for(tool_started.wait(), WITHIN)

    await h.service.cancellation.request(make_cancel(event.metadata.task_id, None))
    await asyncio.wait_for(run, WITHIN)

    assert tool_cancelled.is_set()
    assert h.runs.names() == [
        "task.started",
        "task.progressed",
        "artifact.uploaded",
        "task.cancelled",
    ]
    cancelled = _only_terminal(h)
    uploaded = h.runs.events[2]
    # the attempt's totals: the step that finished, and the artifact it wrote
    assert (cancelled.data.steps, cancelled.data.reason) == (1, None)
    assert cancelled.data.artifact_ids == [uploaded.data.artifact_id]


async def test_cancel_after_the_task_finished_changes_nothing(
    harness, make_submitted, make_cancel
) -> None:
    h = harness(ScriptedProvider())
    event = make_submitted("/steps 1")
    await h.service.runner.run(event)
    before = list(h.runs.events)

    await h.service.cancellation.request(make_cancel(event.metadata.task_id))

    assert h.runs.events == before
    assert h.runs.names()[-1] == "task.succeeded"
    assert h.runs.rows[event.metadata.task_id]["status"] == "succeeded"
    assert h.runs.notified == []


async def test_repeated_cancel_requests_end_in_one_terminal_event(
    harness, blocked, make_submitted, make_cancel
) -> None:
    provider = blocked()
    h = harness(provider)
    event = make_submitted()
    run = asyncio.create_task(h.service.runner.run(event))
    await asyncio.wait_for(provider.called.wait(), WITHIN)

    for _ in range(3):
        await h.service.cancellation.request(make_cancel(event.metadata.task_id))
    await asyncio.wait_for(run, WITHIN)
    await h.service.cancellation.request(make_cancel(event.metadata.task_id))  # late

    assert len(h.runs.terminal()) == 1
    assert h.runs.notified == [event.metadata.task_id]  # only the first one signalled


async def test_a_lost_notification_is_caught_at_the_next_step(harness, make_submitted) -> None:
    event = make_submitted()
    task_id = event.metadata.task_id
    calls = 0

    class FlagsTheRunMidCall:
        """Another replica records the cancel while this call is open; its NOTIFY is lost."""

        async def complete(self, request: ModelRequest) -> ModelReply:
            nonlocal calls
            calls += 1
            h.runs.rows[task_id].update(cancel_requested=True, cancel_reason="lost")
            return ModelReply(
                content=[ToolUseBlock(id=f"toolu_{calls}", name="list_files", input={})],
                stop_reason="tool_use",
            )

    h = harness(FlagsTheRunMidCall())
    await asyncio.wait_for(h.service.runner.run(event), WITHIN)

    assert calls == 1  # the step boundary read the flag: no second model call
    assert h.runs.names() == ["task.started", "task.progressed", "task.cancelled"]
    assert _only_terminal(h).data.reason == "lost"


async def test_a_run_checks_the_flag_as_soon_as_it_is_registered(
    harness, blocked, make_submitted
) -> None:
    """The holder of the run died after the cancel was signalled; the redelivery's attempt
    finds the flag on its first lease renewal, before the model answers."""
    provider = blocked()
    h = harness(provider)
    event = make_submitted()
    h.runs.rows[event.metadata.task_id] = {
        "tenant_id": "acme",
        "status": "running",
        "attempt": 1,
        "lease_owner": "dead-worker",
        "lease_expires_at": h.clock.now - 1,
        "deadline_at": h.clock.now + 100,
        "cancel_requested": True,
        "cancel_reason": "before the crash",
    }

    await asyncio.wait_for(h.service.runner.run(event), WITHIN)

    assert h.runs.names() == ["task.started", "task.cancelled"]
    cancelled = _only_terminal(h)
    assert (cancelled.data.attempt, cancelled.data.reason) == (2, "before the crash")


async def test_cancel_of_a_run_whose_holder_died_finishes_it_at_once(
    harness, make_submitted, make_cancel
) -> None:
    h = harness(ScriptedProvider())
    event = make_submitted()
    h.runs.rows[event.metadata.task_id] = {
        "tenant_id": "acme",
        "status": "running",
        "attempt": 3,
        "steps": 2,
        "usage": Usage(output_tokens=7),
        "cost_usd": 0.5,
        "lease_owner": "dead-worker",
        "lease_expires_at": h.clock.now - 1,
        "deadline_at": h.clock.now + 100,
        "cancel_requested": False,
        "cancel_reason": None,
    }

    await h.service.cancellation.request(make_cancel(event.metadata.task_id))

    cancelled = _only_terminal(h)
    assert (cancelled.data.attempt, cancelled.data.steps, cancelled.data.cost_usd) == (3, 2, 0.5)
    assert cancelled.data.usage == Usage(output_tokens=7)
    assert h.runs.notified == []  # nobody runs it: nothing to signal
    await h.service.runner.run(event)  # its message, redelivered
    assert len(h.runs.terminal()) == 1


async def test_shutdown_interrupts_without_events_and_hands_the_run_back(
    harness, blocked, make_submitted
) -> None:
    provider = blocked()
    h = harness(provider)
    event = make_submitted("/steps 1")
    handler = asyncio.create_task(h.service.runner.run(event))
    await asyncio.wait_for(provider.called.wait(), WITHIN)

    handler.cancel()  # what the consumer does when the grace period runs out
    with pytest.raises(asyncio.CancelledError):
        await handler

    assert provider.cancelled.is_set()
    assert h.runs.names() == ["task.started"]
    row = h.runs.rows[event.metadata.task_id]
    assert row["status"] == "running"
    assert row["lease_expires_at"] <= h.clock.now  # released: the next worker need not wait

    await h.replica(ScriptedProvider(), "worker-2").runner.run(event)  # the redelivery
    assert h.runs.names() == [
        "task.started",
        "task.started",
        "task.progressed",
        "artifact.uploaded",
        "task.succeeded",
    ]
    assert h.runs.terminal()[0].data.attempt == 2


async def test_a_shutdown_during_a_cancel_emits_nothing(harness, blocked, make_submitted) -> None:
    provider = blocked()
    h = harness(provider)
    event = make_submitted()
    handler = asyncio.create_task(h.service.runner.run(event))
    await asyncio.wait_for(provider.called.wait(), WITHIN)

    h.service.running.cancel(event.metadata.task_id)
    handler.cancel()
    with pytest.raises(asyncio.CancelledError):
        await handler

    assert h.runs.names() == ["task.started"]  # the next attempt sees the flag and cancels


async def test_cancel_reaches_the_replica_that_runs_the_task(
    harness, blocked, make_submitted, make_cancel
) -> None:
    provider = blocked()
    h = harness(provider)
    other = h.replica(blocked(), "worker-2")  # receives the cancel, runs nothing
    event = make_submitted()
    run = asyncio.create_task(h.service.runner.run(event))
    await asyncio.wait_for(provider.called.wait(), WITHIN)

    await other.cancellation.request(make_cancel(event.metadata.task_id))
    await asyncio.wait_for(run, WITHIN)

    assert provider.cancelled.is_set()
    assert _only_terminal(h).data.attempt == 1


async def test_the_first_stop_cause_wins() -> None:
    work = asyncio.create_task(asyncio.sleep(10))
    running = RunningAttempts()
    with running.register(uuid.uuid4(), 1, work) as entry:
        assert entry.stop_for(StopCause.LEASE_LOST)
        assert not entry.stop_for(StopCause.CANCEL_REQUESTED)
        assert entry.stop is StopCause.LEASE_LOST
        assert not running.cancel(entry.task_id)
    assert running.task_ids() == []
    with pytest.raises(asyncio.CancelledError):
        await work
