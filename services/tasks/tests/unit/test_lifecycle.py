"""The task state machine, transition by transition (pure functions, no I/O)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from relay_shared.events import (
    DomainEvent,
    TaskCancelled,
    TaskCancelledData,
    TaskFailed,
    TaskFailedData,
    TaskInputRequested,
    TaskInputRequestedData,
    TaskProgressed,
    TaskProgressedData,
    TaskStarted,
    TaskStartedData,
    TaskSucceeded,
    TaskSucceededData,
    Usage,
)
from tasks.lifecycle import (
    TERMINAL_STATUSES,
    PendingQuestion,
    ProgressMark,
    TaskError,
    TaskState,
    TaskStatus,
    apply,
    provide_input,
    request_cancel,
)

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=1)
T2 = T0 + timedelta(minutes=2)
TASK_ID = uuid4()
SOME_USAGE = Usage(input_tokens=10, output_tokens=5)
FINAL_USAGE = Usage(
    input_tokens=100, output_tokens=50, cache_creation_input_tokens=7, cache_read_input_tokens=3
)
FINAL_COST = 1.5


def started(attempt: int = 1, at: datetime = T1) -> TaskStarted:
    return TaskStarted.create(
        TaskStartedData(attempt=attempt, worker_id="worker-1"),
        tenant_id="acme",
        task_id=TASK_ID,
        occurred_at=at,
    )


def progressed(
    attempt: int, step: int, usage: Usage = SOME_USAGE, cost: float = 0.25
) -> TaskProgressed:
    return TaskProgressed.create(
        TaskProgressedData(
            attempt=attempt, step=step, message="step done", usage=usage, cost_usd=cost
        ),
        tenant_id="acme",
        task_id=TASK_ID,
        occurred_at=T1,
    )


def succeeded(at: datetime = T2) -> TaskSucceeded:
    return TaskSucceeded.create(
        TaskSucceededData(
            attempt=1, steps=2, usage=FINAL_USAGE, cost_usd=FINAL_COST, summary="all done"
        ),
        tenant_id="acme",
        task_id=TASK_ID,
        occurred_at=at,
    )


def failed(
    at: datetime = T2, code: str = "scripted_failure", budget: str | None = None
) -> TaskFailed:
    return TaskFailed.create(
        TaskFailedData(
            attempt=1,
            usage=FINAL_USAGE,
            cost_usd=FINAL_COST,
            code=code,
            message="boom",
            budget=budget,
        ),
        tenant_id="acme",
        task_id=TASK_ID,
        occurred_at=at,
    )


def cancelled(at: datetime = T2) -> TaskCancelled:
    return TaskCancelled.create(
        TaskCancelledData(attempt=0, cost_usd=FINAL_COST, reason="asked"),
        tenant_id="acme",
        task_id=TASK_ID,
        occurred_at=at,
    )


QUEUED = TaskState()
RUNNING = TaskState(status=TaskStatus.RUNNING, started_at=T0)
RUNNING_AT_STEP_2 = replace(RUNNING, usage=SOME_USAGE, cost_usd=0.25, progress=ProgressMark(1, 2))
CANCELLING_AT_STEP_2 = replace(RUNNING_AT_STEP_2, status=TaskStatus.CANCELLING)
CANCELLING_UNSTARTED = TaskState(status=TaskStatus.CANCELLING)
SUCCEEDED = TaskState(
    status=TaskStatus.SUCCEEDED, started_at=T0, finished_at=T1, usage=SOME_USAGE, summary="ok"
)
FAILED = TaskState(
    status=TaskStatus.FAILED,
    started_at=T0,
    finished_at=T1,
    error=TaskError("scripted_failure", "first failure"),
)
CANCELLED = TaskState(status=TaskStatus.CANCELLED, finished_at=T1)
TERMINAL_STATES = [SUCCEEDED, FAILED, CANCELLED]
ALL_EVENTS = [started(), progressed(9, 9), succeeded(), failed(), cancelled()]

CHANGES: list[tuple[str, TaskState, DomainEvent, TaskState]] = [
    # task.started
    (
        "started: queued -> running, started_at set",
        QUEUED,
        started(),
        TaskState(status=TaskStatus.RUNNING, started_at=T1),
    ),
    ("started again (attempt 2): running stays, first start kept", RUNNING, started(2), RUNNING),
    (
        "started while cancelling: stays cancelling, records the start",
        CANCELLING_UNSTARTED,
        started(),
        replace(CANCELLING_UNSTARTED, started_at=T1),
    ),
    # task.progressed
    (
        "first progress: usage and mark recorded, status untouched",
        QUEUED,
        progressed(1, 1),
        replace(QUEUED, usage=SOME_USAGE, cost_usd=0.25, progress=ProgressMark(1, 1)),
    ),
    (
        "newer step: usage and cost replaced",
        RUNNING_AT_STEP_2,
        progressed(1, 3, FINAL_USAGE, cost=0.75),
        replace(RUNNING_AT_STEP_2, usage=FINAL_USAGE, cost_usd=0.75, progress=ProgressMark(1, 3)),
    ),
    (
        "newer attempt beats a higher step of the older attempt",
        RUNNING_AT_STEP_2,
        progressed(2, 1, FINAL_USAGE, cost=0.1),
        replace(RUNNING_AT_STEP_2, usage=FINAL_USAGE, cost_usd=0.1, progress=ProgressMark(2, 1)),
    ),
    (
        "older step: ignored, cost included",
        RUNNING_AT_STEP_2,
        progressed(1, 1, FINAL_USAGE, cost=9.0),
        RUNNING_AT_STEP_2,
    ),
    (
        "same step again: ignored",
        RUNNING_AT_STEP_2,
        progressed(1, 2, FINAL_USAGE, cost=9.0),
        RUNNING_AT_STEP_2,
    ),
    (
        "progress while cancelling: stays cancelling, usage and cost recorded",
        CANCELLING_AT_STEP_2,
        progressed(1, 3, FINAL_USAGE, cost=0.75),
        replace(
            CANCELLING_AT_STEP_2, usage=FINAL_USAGE, cost_usd=0.75, progress=ProgressMark(1, 3)
        ),
    ),
    (
        "a later attempt's start while cancelling: stays cancelling",
        CANCELLING_AT_STEP_2,
        started(2, at=T2),
        CANCELLING_AT_STEP_2,
    ),
    # terminal events
    (
        "succeeded from running: finished, final usage, result",
        RUNNING_AT_STEP_2,
        succeeded(),
        replace(
            RUNNING_AT_STEP_2,
            status=TaskStatus.SUCCEEDED,
            finished_at=T2,
            usage=FINAL_USAGE,
            cost_usd=FINAL_COST,
            summary="all done",
        ),
    ),
    (
        "failed from running: finished, final usage and cost, error",
        RUNNING,
        failed(),
        replace(
            RUNNING,
            status=TaskStatus.FAILED,
            finished_at=T2,
            usage=FINAL_USAGE,
            cost_usd=FINAL_COST,
            error=TaskError("scripted_failure", "boom"),
        ),
    ),
    (
        "failed on a budget: the error names the budget",
        RUNNING,
        failed(code="budget_exceeded", budget="max_turns"),
        replace(
            RUNNING,
            status=TaskStatus.FAILED,
            finished_at=T2,
            usage=FINAL_USAGE,
            cost_usd=FINAL_COST,
            error=TaskError("budget_exceeded", "boom", budget="max_turns"),
        ),
    ),
    (
        "failed with another code: a stray budget is not kept",
        RUNNING,
        failed(code="provider_auth_failed", budget="max_turns"),
        replace(
            RUNNING,
            status=TaskStatus.FAILED,
            finished_at=T2,
            usage=FINAL_USAGE,
            cost_usd=FINAL_COST,
            error=TaskError("provider_auth_failed", "boom"),
        ),
    ),
    (
        "cancelled from cancelling: final usage and cost",
        CANCELLING_AT_STEP_2,
        cancelled(),
        replace(
            CANCELLING_AT_STEP_2,
            status=TaskStatus.CANCELLED,
            finished_at=T2,
            usage=Usage(),
            cost_usd=FINAL_COST,
        ),
    ),
    (
        "cancelled from cancelling before it started",
        CANCELLING_UNSTARTED,
        cancelled(),
        replace(
            CANCELLING_UNSTARTED, status=TaskStatus.CANCELLED, finished_at=T2, cost_usd=FINAL_COST
        ),
    ),
    (
        "succeeded before task.started: finished from queued, started_at stays unset",
        QUEUED,
        succeeded(),
        TaskState(
            status=TaskStatus.SUCCEEDED,
            finished_at=T2,
            usage=FINAL_USAGE,
            cost_usd=FINAL_COST,
            summary="all done",
        ),
    ),
]


@pytest.mark.parametrize(
    ("before", "event", "after"),
    [case[1:] for case in CHANGES],
    ids=[case[0] for case in CHANGES],
)
def test_transition(before: TaskState, event: DomainEvent, after: TaskState) -> None:
    assert apply(before, event) == after


@pytest.mark.parametrize("state", TERMINAL_STATES, ids=lambda s: s.status.value)
@pytest.mark.parametrize("event", ALL_EVENTS, ids=lambda e: e.name)
def test_a_terminal_task_never_changes(state: TaskState, event: DomainEvent) -> None:
    assert apply(state, event) is state


def test_task_started_after_a_terminal_event_keeps_started_at_unset() -> None:
    finished = apply(QUEUED, cancelled())
    assert apply(finished, started(at=T2 + timedelta(minutes=1))).started_at is None


def test_terminal_statuses_are_exactly_the_three_endings() -> None:
    assert {s.value for s in TERMINAL_STATUSES} == {"succeeded", "failed", "cancelled"}
    assert all(TaskState(status=s).terminal for s in TERMINAL_STATUSES)
    assert not any(TaskState(status=s).terminal for s in set(TaskStatus) - TERMINAL_STATUSES)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (QUEUED, CANCELLING_UNSTARTED),
        (RUNNING_AT_STEP_2, CANCELLING_AT_STEP_2),
    ],
    ids=["queued", "running"],
)
def test_a_cancel_request_moves_a_live_task_to_cancelling(
    before: TaskState, after: TaskState
) -> None:
    assert request_cancel(before) == after


@pytest.mark.parametrize(
    "state", [CANCELLING_AT_STEP_2, *TERMINAL_STATES], ids=lambda s: s.status.value
)
def test_a_cancel_request_leaves_cancelling_and_finished_tasks_alone(state: TaskState) -> None:
    assert request_cancel(state) is state


# --- human input ------------------------------------------------------------------------------

QUESTION_ID = uuid4()
ASKED_USAGE = Usage(input_tokens=30, output_tokens=9)


def input_requested(attempt: int = 1, step: int = 2, at: datetime = T1) -> TaskInputRequested:
    return TaskInputRequested.create(
        TaskInputRequestedData(
            attempt=attempt,
            step=step,
            question_id=QUESTION_ID,
            question="Which region?",
            usage=ASKED_USAGE,
            cost_usd=0.5,
        ),
        tenant_id="acme",
        task_id=TASK_ID,
        occurred_at=at,
    )


def waiting(base: TaskState, attempt: int = 1, step: int = 2) -> TaskState:
    mark = ProgressMark(attempt, step)
    return replace(
        base,
        status=TaskStatus.WAITING_FOR_INPUT,
        usage=ASKED_USAGE,
        cost_usd=0.5,
        progress=mark,
        question=PendingQuestion(QUESTION_ID, "Which region?", T1, mark),
    )


@pytest.mark.parametrize(
    "before", [RUNNING_AT_STEP_2, RUNNING, QUEUED], ids=["running", "running-no-step", "queued"]
)
def test_a_question_makes_a_live_task_wait(before: TaskState) -> None:
    """Queued too: the question can overtake task.started (a later task.started keeps it)."""
    after = apply(before, input_requested())
    assert after == waiting(before)
    assert apply(after, started()).status is TaskStatus.WAITING_FOR_INPUT


def test_a_question_older_than_the_newest_step_is_stale() -> None:
    at_step_3 = replace(RUNNING, progress=ProgressMark(1, 3))
    assert apply(at_step_3, input_requested(step=2)) is at_step_3


def test_a_task_being_cancelled_does_not_start_waiting() -> None:
    assert apply(CANCELLING_AT_STEP_2, input_requested()) is CANCELLING_AT_STEP_2


def test_a_late_step_of_the_asking_attempt_leaves_a_waiting_task_waiting() -> None:
    state = waiting(RUNNING_AT_STEP_2)
    assert apply(state, progressed(1, 2)) is state
    assert apply(state, progressed(1, 1)) is state


def test_the_answer_makes_the_task_run_again_without_its_question() -> None:
    state = waiting(RUNNING_AT_STEP_2)
    after = provide_input(state)
    assert after.status is TaskStatus.RUNNING
    assert after.question is None
    assert after.progress == state.progress  # the resumed attempt's steps come after it


def test_a_waiting_task_can_be_cancelled_or_end() -> None:
    state = waiting(RUNNING_AT_STEP_2)
    cancelling = request_cancel(state)
    assert (cancelling.status, cancelling.question) == (TaskStatus.CANCELLING, None)
    timed_out = apply(state, failed())
    assert (timed_out.status, timed_out.question) == (TaskStatus.FAILED, None)


@pytest.mark.parametrize("state", TERMINAL_STATES, ids=lambda s: s.status.value)
def test_a_question_never_reopens_a_finished_task(state: TaskState) -> None:
    assert apply(state, input_requested()) is state
