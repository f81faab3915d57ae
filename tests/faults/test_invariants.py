"""The checker the fault tests rely on finds what it must: a gap, a second terminal event, a
step counted twice. (A checker that passes everything would make every fault test pass.)"""

from __future__ import annotations

from typing import Any

from relay_devkit.api_client import TimelineEvent

from .invariants import artifact_problems, timeline_problems


def _timeline(*events: tuple[str, dict[str, Any]]) -> list[TimelineEvent]:
    return [TimelineEvent(n, name, {"data": data}) for n, (name, data) in enumerate(events, 1)]


def _progress(attempt: int, step: int) -> tuple[str, dict[str, Any]]:
    return "task.progressed", {"attempt": attempt, "step": step}


SUBMITTED = ("task.submitted", {})
STARTED = ("task.started", {})
SUCCEEDED = ("task.succeeded", {})


def test_steps_out_of_order_are_a_problem() -> None:
    # the notifier holds step 2 until step 1 is in (ADR 0005): any other order is a defect
    swapped = _timeline(SUBMITTED, STARTED, _progress(1, 2), _progress(1, 1), SUCCEEDED)
    assert timeline_problems("t", swapped) == ["t: attempt 1 steps [2, 1]"]


def test_an_artifact_missing_from_the_timeline_or_on_it_twice_is_a_problem() -> None:
    published = ("artifact.published", {"artifact_id": "a1"})
    recorded = [{"id": "a1", "name": "out.md"}, {"id": "a2", "name": "late.md"}]
    events = _timeline(SUBMITTED, STARTED, _progress(1, 1), published, SUCCEEDED)
    assert artifact_problems("t", events, recorded[:1]) == []
    assert artifact_problems("t", events, recorded) == [
        "t: artifacts not on the timeline: ['late.md']"
    ]
    twice = _timeline(SUBMITTED, STARTED, _progress(1, 1), published, published, SUCCEEDED)
    assert artifact_problems("t", twice, recorded[:1]) == [
        "t: an artifact published twice on the timeline"
    ]


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


def test_a_resumed_attempt_goes_on_after_the_step_that_asked() -> None:
    resumed = ("task.started", {"attempt": 2, "resumed": {"question_id": "q", "step": 1}})
    asked = ("task.input_requested", {})
    answered = ("task.input_provided", {})
    events = _timeline(
        SUBMITTED, STARTED, _progress(1, 1), asked, answered, resumed, _progress(2, 2), SUCCEEDED
    )
    assert timeline_problems("t", events) == []
    restarted = _timeline(
        SUBMITTED, STARTED, _progress(1, 1), asked, answered, resumed, _progress(2, 1), SUCCEEDED
    )
    assert timeline_problems("t", restarted) == ["t: attempt 2 steps [1]"]
