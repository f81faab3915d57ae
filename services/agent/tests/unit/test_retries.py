"""Provider errors: passing ones are retried with backoff and jitter inside the budget; the
others fail the task at once with the provider's code. Waits run on a fake clock."""

from __future__ import annotations

import random

import pytest

from agent.providers.base import ModelReply, ProviderError, TextBlock, ToolUseBlock
from agent.retries import RetryPolicy
from relay_shared.events import TaskFailed, TaskLimits, TaskSucceeded


def _end() -> ModelReply:
    return ModelReply(content=[TextBlock(text="done")], stop_reason="end_turn")


def _error(code: str, *, retryable: bool = True, retry_after: float | None = None) -> Exception:
    return ProviderError(code, f"{code} from the provider", retryable=retryable,
                         retry_after=retry_after)  # fmt: skip


def _terminal(h):
    [terminal] = h.runs.terminal()
    return terminal


async def test_a_rate_limit_is_retried_after_a_jittered_backoff(
    harness, recording, make_submitted
) -> None:
    provider = recording(replies=[_error("rate_limited"), _end()])
    h = harness(provider, provider_retry_base_seconds=2)
    await h.service.runner.run(make_submitted())

    assert isinstance(_terminal(h), TaskSucceeded)
    assert len(provider.requests) == 2
    [waited] = h.clock.sleeps
    assert 0 <= waited <= 2  # full jitter: anywhere up to the first backoff step


async def test_overload_beyond_max_retries_fails_with_the_providers_code(
    harness, recording, make_submitted
) -> None:
    provider = recording(replies=[_error("overloaded") for _ in range(4)] + [_end()])
    h = harness(provider, provider_max_retries=3, provider_retry_base_seconds=1)
    await h.service.runner.run(make_submitted())

    assert len(provider.requests) == 4  # the first try and three retries
    failed = _terminal(h)
    assert isinstance(failed, TaskFailed)
    assert (failed.data.code, failed.data.message) == ("overloaded", "overloaded from the provider")
    assert failed.data.budget is None
    assert len(h.clock.sleeps) == 3
    for n, waited in enumerate(h.clock.sleeps):
        assert 0 <= waited <= 2**n  # exponential ceilings 1, 2, 4


async def test_retry_after_is_honoured(harness, recording, make_submitted) -> None:
    provider = recording(replies=[_error("rate_limited", retry_after=7.5), _end()])
    h = harness(provider, provider_retry_base_seconds=1)
    await h.service.runner.run(make_submitted())

    assert h.clock.sleeps == [7.5]  # the jittered backoff (at most 1 s) is shorter
    assert isinstance(_terminal(h), TaskSucceeded)


async def test_a_retry_that_would_pass_the_wall_deadline_is_not_attempted(
    harness, recording, make_submitted
) -> None:
    provider = recording(replies=[_error("rate_limited", retry_after=30), _end()])
    h = harness(provider)
    limits = TaskLimits(max_turns=5, max_output_tokens=1000, max_wall_seconds=20)
    await h.service.runner.run(make_submitted(limits=limits))

    assert len(provider.requests) == 1
    assert h.clock.sleeps == []
    failed = _terminal(h)
    assert isinstance(failed, TaskFailed)
    assert failed.data.code == "rate_limited"


@pytest.mark.parametrize(
    "code", ["invalid_request", "provider_auth_failed", "model_not_found", "scripted_failure"]
)
async def test_a_non_retryable_error_fails_at_once(
    harness, recording, make_submitted, code
) -> None:
    provider = recording(replies=[_error(code, retryable=False), _end()])
    h = harness(provider)
    await h.service.runner.run(make_submitted())

    assert len(provider.requests) == 1
    assert h.clock.sleeps == []
    failed = _terminal(h)
    assert isinstance(failed, TaskFailed)
    assert failed.data.code == code


def test_backoff_doubles_up_to_the_cap_before_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    # the full jitter picks anywhere up to the ceiling: pick the ceiling
    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    policy = RetryPolicy(8, base_seconds=1, max_seconds=30)
    assert [policy.delay(n, None) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert policy.delay(0, retry_after=12) == 12


async def test_retries_are_counted_per_call(harness, recording, make_submitted) -> None:
    step = ModelReply(
        content=[ToolUseBlock(id="toolu_1", name="list_files", input={})], stop_reason="tool_use"
    )
    provider = recording(
        replies=[
            *[_error("overloaded"), _error("overloaded"), step],
            *[_error("overloaded"), _error("overloaded"), _end()],
        ]
    )
    h = harness(provider, provider_max_retries=2)
    await h.service.runner.run(make_submitted())

    assert isinstance(_terminal(h), TaskSucceeded)
    assert len(h.clock.sleeps) == 4
