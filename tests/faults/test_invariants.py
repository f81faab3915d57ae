"""The checker the fault tests rely on finds what it must: a gap, a second terminal event, a
step counted twice. (A checker that passes everything would make every fault test pass.)"""

from __future__ import annotations

from typing import Any

from relay_devkit.api_client import TimelineEvent

from .invariants import timeline_problems


def _timeline(*events: tuple[str, dict[str, Any]]) -> list[TimelineEvent]:
    return [TimelineEvent(n, name, {"data": data}) for n, (name, data) in enumerate(events, 1)]


def _progress(attempt: int, step: int) -> tuple[str, dict[str, Any]]:
    return "task.progressed", {"attempt": attempt, "step": step}


SUBMITTED = ("task.submitted", {})
STARTED = ("task.started", {})
SUCCEEDED = ("task.succeeded", {})


def test_a_step_released_late_is_not_a_problem() -> None:
    # its event outlived the notifier's hold (ADR 0005): late, not lost and not repeated
    late = _timeline(SUBMITTED, STARTED, _progress(1, 2), _progress(1, 1), SUCCEEDED)
    assert timeline_problems("t", late) == []


def test_a_clean_rerun_passes() -> None:
    events = _timeline(
        SUBMITTED, STARTED, _progress(1, 1), STARTED, _progress(2, 1), _progress(2, 2), SUCCEEDED
    )
    assert timeline_problems("t", events) == []


def test_a_gap_two_terminals_and_a_repeated_step_are_each_found() -> None:
    gap = _timeline(SUBMITTED, STARTED, SUCCEEDED)
    gap[2] = TimelineEvent(4, "task.succeeded", {"data": {}})
    assert timeline_problems("t", gap) == ["t: seq not 1..n: [1, 2, 4]"]
    twice = _timeline(SUBMITTED, STARTED, SUCCEEDED, ("task.failed", {}))
    assert timeline_problems("t", twice) == ["t: 2 terminal events"]
    repeated = _timeline(SUBMITTED, STARTED, _progress(1, 1), _progress(1, 1), SUCCEEDED)
    assert timeline_problems("t", repeated) == ["t: attempt 1 steps [1, 1]"]
    missing = _timeline(SUBMITTED, STARTED, _progress(1, 1), _progress(1, 3), SUCCEEDED)
    assert timeline_problems("t", missing) == ["t: attempt 1 steps [1, 3]"]
    not_last = _timeline(SUBMITTED, STARTED, SUCCEEDED, _progress(1, 1))
    assert timeline_problems("t", not_last) == ["t: terminal event is not last"]
