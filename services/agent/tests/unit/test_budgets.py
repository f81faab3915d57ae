"""One test per budget: each ends the task failed with budget_exceeded and names the budget.
The output-token and cost budgets cap each call's max_tokens BEFORE the call."""

from __future__ import annotations

import asyncio
import time

from pydantic import BaseModel

from agent.pricing import ModelPrice
from agent.providers.base import ModelReply, TextBlock, ToolUseBlock
from agent.tools import TOOLS, ToolOutcome, define_tool
from relay_shared.events import TaskFailed, TaskLimits, TaskProgressed, TaskSucceeded, Usage


def _limits(**overrides: float) -> TaskLimits:
    values: dict[str, float] = {
        "max_turns": 10,
        "max_output_tokens": 10_000,
        "max_wall_seconds": 60,
    }
    return TaskLimits.model_validate(values | overrides)


def _tool_use(output_tokens: int, *, input_tokens: int = 10, **usage: int) -> ModelReply:
    return ModelReply(
        content=[ToolUseBlock(id="toolu_1", name="list_files", input={})],
        stop_reason="tool_use",
        usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens, **usage),
    )


def _cut(output_tokens: int, *, input_tokens: int = 10) -> ModelReply:
    """A reply the model stopped because it reached the request's max_tokens."""
    return ModelReply(
        content=[TextBlock(text="and then")],
        stop_reason="max_tokens",
        usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
    )


def _failure(h) -> TaskFailed:
    [terminal] = h.runs.terminal()
    assert isinstance(terminal, TaskFailed)
    return terminal


async def test_max_turns_allows_no_model_call_beyond_it(harness, recording, make_submitted) -> None:
    provider = recording(replies=[_tool_use(5) for _ in range(5)])
    h = harness(provider)
    await h.service.runner.run(make_submitted(limits=_limits(max_turns=2)))

    assert len(provider.requests) == 2
    failed = _failure(h)
    assert (failed.data.code, failed.data.budget) == ("budget_exceeded", "max_turns")
    assert "max_turns budget of 2" in failed.data.message
    assert (failed.data.steps, failed.data.usage) == (2, Usage(input_tokens=20, output_tokens=10))


async def test_max_output_tokens_caps_each_call_and_a_cut_reply_ends_the_task(
    harness, recording, make_submitted
) -> None:
    provider = recording(replies=[_tool_use(20), _tool_use(20), _cut(10)])
    h = harness(provider, model_max_tokens=4096)
    await h.service.runner.run(make_submitted(limits=_limits(max_output_tokens=50)))

    # what was left of the budget, sent as max_tokens before each call
    assert [r.max_tokens for r in provider.requests] == [50, 30, 10]
    failed = _failure(h)
    assert (failed.data.code, failed.data.budget) == ("budget_exceeded", "max_output_tokens")
    assert failed.data.message == (
        "The model's reply was cut at the 10 output tokens left in the task's"
        " max_output_tokens budget of 50."
    )
    assert failed.data.usage.output_tokens == 50


async def test_no_output_tokens_left_means_no_call(harness, recording, make_submitted) -> None:
    provider = recording(replies=[_tool_use(25), _tool_use(25), _tool_use(25)])
    h = harness(provider, model_max_tokens=30)
    await h.service.runner.run(make_submitted(limits=_limits(max_output_tokens=50)))

    # the setting caps the first call, the budget the second; nothing is left for a third
    assert [r.max_tokens for r in provider.requests] == [30, 25]
    assert _failure(h).data.budget == "max_output_tokens"


async def test_a_reply_cut_by_the_setting_is_not_a_budget(
    harness, recording, make_submitted
) -> None:
    provider = recording(replies=[_cut(30)])
    h = harness(provider, model_max_tokens=30)
    await h.service.runner.run(make_submitted(limits=_limits(max_output_tokens=1000)))

    [terminal] = h.runs.terminal()
    assert isinstance(terminal, TaskSucceeded)


async def test_max_cost_caps_max_tokens_by_the_output_price_and_checks_each_reply(
    harness, recording, make_submitted
) -> None:
    # claude-sonnet-4-5: $3 in, $15 out, $3.75 cache write, $0.30 cache read per million
    provider = recording(
        replies=[
            _tool_use(
                100,
                input_tokens=100,
                cache_creation_input_tokens=1000,
                cache_read_input_tokens=1000,
            ),
            _cut(40, input_tokens=300),
        ]
    )
    h = harness(provider)
    task = make_submitted(model="claude-sonnet-4-5", limits=_limits(max_cost_usd=0.01))
    await h.service.runner.run(task)

    # call 1: nothing spent, $0.01 buys 666 output tokens at $15/M.
    # call 1 cost 100*3 + 100*15 + 1000*3.75 + 1000*0.3 = 5850 micro-dollars; $0.00415 left
    # buys 276 output tokens.
    assert [r.max_tokens for r in provider.requests] == [666, 276]
    [progressed] = [e for e in h.runs.events if isinstance(e, TaskProgressed)]
    assert progressed.data.cost_usd == 0.00585
    # call 2 adds 300*3 + 40*15 = 1500: $0.00735 is within budget, but the reply was cut at
    # the cap the budget set
    failed = _failure(h)
    assert (failed.data.code, failed.data.budget) == ("budget_exceeded", "max_cost_usd")
    assert failed.data.cost_usd == 0.00735
    assert failed.data.message.startswith(
        "The model's reply was cut at the 276 output tokens the task's max_cost_usd budget"
        " of $0.01 still paid for (estimated cost so far $0.00735)."
    )


async def test_max_cost_is_checked_after_every_reply(harness, recording, make_submitted) -> None:
    # input tokens cannot be capped: a big prompt may take the total over the limit
    provider = recording(replies=[_tool_use(10, input_tokens=5000), _tool_use(10)])
    h = harness(provider)
    task = make_submitted(model="claude-haiku-4-5", limits=_limits(max_cost_usd=0.001))
    await h.service.runner.run(task)

    assert len(provider.requests) == 1
    failed = _failure(h)
    assert failed.data.budget == "max_cost_usd"
    assert failed.data.cost_usd == 0.00505  # 5000*1 + 10*5 micro-dollars
    assert failed.data.steps == 0  # the step over budget is not run
    assert failed.data.message == (
        "The task's estimated cost ($0.00505) reached its max_cost_usd budget of $0.001."
    )


async def test_a_cost_limit_on_an_unpriced_model_fails_before_any_call(
    harness, recording, make_submitted
) -> None:
    provider = recording(replies=[])
    h = harness(provider)
    await h.service.runner.run(make_submitted(model="scripted", limits=_limits(max_cost_usd=1)))

    assert provider.requests == []
    failed = _failure(h)
    assert (failed.data.code, failed.data.budget) == ("model_not_priced", None)
    assert "'scripted'" in failed.data.message
    assert "RELAY_MODEL_PRICES" in failed.data.message


async def test_model_prices_setting_replaces_the_table_entry(
    harness, recording, make_submitted
) -> None:
    provider = recording(replies=[_tool_use(100, input_tokens=1000), _cut(0)])
    h = harness(
        provider,
        model_prices={"scripted": ModelPrice(input=1, output=10, cache_write=0, cache_read=0)},
    )
    await h.service.runner.run(make_submitted(model="scripted", limits=_limits(max_cost_usd=0.01)))

    # $0.01 buys 1000 output tokens at $10/M; then 0.01 - 0.002 buys 800
    assert [r.max_tokens for r in provider.requests] == [1000, 800]


async def test_max_wall_seconds_aborts_the_model_call_at_once(
    harness, blocked, make_submitted
) -> None:
    provider = blocked()
    h = harness(provider)
    started = time.monotonic()
    await h.service.runner.run(make_submitted(limits=_limits(max_wall_seconds=0.3)))

    assert time.monotonic() - started < 5  # not the model's (never-ending) time
    assert provider.cancelled.is_set()  # the call was interrupted, not abandoned
    failed = _failure(h)
    assert (failed.data.code, failed.data.budget) == ("budget_exceeded", "max_wall_seconds")
    assert failed.data.message == "The task ran out of its max_wall_seconds budget of 0.3 s."


class _Nothing(BaseModel):
    pass


async def test_max_wall_seconds_aborts_a_running_tool(harness, recording, make_submitted) -> None:
    tool_cancelled = asyncio.Event()

    async def wait_forever(_workspace, _args) -> ToolOutcome:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            tool_cancelled.set()
            raise
        raise AssertionError("unreachable")

    slow = define_tool("slow", "Never ends.", _Nothing, wait_forever)
    provider = recording(
        replies=[
            ModelReply(
                content=[ToolUseBlock(id="toolu_slow", name="slow", input={})],
                stop_reason="tool_use",
            )
        ]
    )
    h = harness(provider, tools={**TOOLS, "slow": slow})
    await h.service.runner.run(make_submitted(limits=_limits(max_wall_seconds=0.3)))

    assert tool_cancelled.is_set()
    assert _failure(h).data.budget == "max_wall_seconds"
    assert h.runs.names() == ["task.started", "task.failed"]
