"""The task state machine: how each lifecycle event moves a task's state. Pure functions, no I/O.

Events arrive at least once and in any order (SQS standard queues), so every transition is
guarded: a repeated or late event leaves the state as it is, and a finished task never changes.
A client's cancel request is the one change that does not come from an event (``request_cancel``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from relay_shared.events import (
    DomainEvent,
    TaskCancelled,
    TaskFailed,
    TaskInputRequested,
    TaskProgressed,
    TaskStarted,
    TaskSucceeded,
    TerminalData,
    Usage,
)


class TaskStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING_FOR_INPUT = "waiting_for_input"
    CANCELLING = "cancelling"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATUSES = frozenset({TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED})


BUDGET_EXCEEDED = "budget_exceeded"


@dataclass(frozen=True)
class TaskError:
    code: str
    message: str
    budget: str | None = None  # with code budget_exceeded: which limit, e.g. "max_turns"


@dataclass(frozen=True, order=True)
class ProgressMark:
    """The newest (attempt, step) applied; older task.progressed events are ignored."""

    attempt: int
    step: int


@dataclass(frozen=True)
class PendingQuestion:
    """The question a waiting task asked, from the step ``mark`` that asked it."""

    id: UUID
    text: str
    asked_at: datetime
    mark: ProgressMark


@dataclass(frozen=True)
class TaskState:
    """The part of a task that lifecycle events change."""

    status: TaskStatus = TaskStatus.QUEUED
    started_at: datetime | None = None
    finished_at: datetime | None = None
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0  # estimated; moves with usage, under the same guard
    progress: ProgressMark | None = None
    error: TaskError | None = None
    summary: str | None = None
    question: PendingQuestion | None = None  # set while waiting_for_input
    answered: UUID | None = None  # the question the last answer went to

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


def started(state: TaskState, event: TaskStarted) -> TaskState:
    # running and cancelling stay: a second attempt's task.started must not undo a cancel request
    status = TaskStatus.RUNNING if state.status is TaskStatus.QUEUED else state.status
    return replace(state, status=status, started_at=state.started_at or event.metadata.occurred_at)


def progressed(state: TaskState, event: TaskProgressed) -> TaskState:
    mark = ProgressMark(event.data.attempt, event.data.step)
    if state.progress is not None and mark <= state.progress:
        return state
    return replace(state, usage=event.data.usage, cost_usd=event.data.cost_usd, progress=mark)


def input_requested(state: TaskState, event: TaskInputRequested) -> TaskState:
    """queued (its task.started not applied yet) or running -> waiting_for_input. A task being
    cancelled stays cancelling (the agent ends it); a question from a step older than the newest
    one applied is stale and changes nothing."""
    data = event.data
    mark = ProgressMark(data.attempt, data.step)
    waits = state.status in (TaskStatus.QUEUED, TaskStatus.RUNNING)
    if not waits or (state.progress is not None and mark < state.progress):
        return state
    question = PendingQuestion(data.question_id, data.question, event.metadata.occurred_at, mark)
    return replace(
        state,
        status=TaskStatus.WAITING_FOR_INPUT,
        question=question,
        usage=data.usage,
        cost_usd=data.cost_usd,
        progress=mark,
    )


def succeeded(state: TaskState, event: TaskSucceeded) -> TaskState:
    return replace(
        _finished(state, TaskStatus.SUCCEEDED, event.metadata.occurred_at, event.data),
        summary=event.data.summary,
    )


def failed(state: TaskState, event: TaskFailed) -> TaskState:
    return replace(
        _finished(state, TaskStatus.FAILED, event.metadata.occurred_at, event.data),
        error=TaskError(
            code=event.data.code,
            message=event.data.message,
            budget=event.data.budget if event.data.code == BUDGET_EXCEEDED else None,
        ),
    )


def cancelled(state: TaskState, event: TaskCancelled) -> TaskState:
    return _finished(state, TaskStatus.CANCELLED, event.metadata.occurred_at, event.data)


def _finished(
    state: TaskState, status: TaskStatus, occurred_at: datetime, data: TerminalData
) -> TaskState:
    # started_at stays as it is, even unset: a terminal event may overtake task.started
    return replace(
        state,
        status=status,
        finished_at=occurred_at,
        usage=data.usage,
        cost_usd=data.cost_usd,
        question=None,
    )


Transition = Callable[[TaskState, Any], TaskState]

TRANSITIONS: Mapping[str, Transition] = {
    TaskStarted.name: started,
    TaskProgressed.name: progressed,
    TaskInputRequested.name: input_requested,
    TaskSucceeded.name: succeeded,
    TaskFailed.name: failed,
    TaskCancelled.name: cancelled,
}


def apply(state: TaskState, event: DomainEvent) -> TaskState:
    """The state after ``event``; ``state`` itself when the event changes nothing."""
    if state.terminal:
        return state
    return TRANSITIONS[event.name](state, event)


def request_cancel(state: TaskState) -> TaskState:
    """A client asked to cancel: queued, running or waiting -> cancelling. Cancelling and terminal
    tasks stay as they are. The agent's terminal event ends the task; no event moves it back."""
    if state.status in (TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.WAITING_FOR_INPUT):
        return replace(state, status=TaskStatus.CANCELLING, question=None)
    return state


def provide_input(state: TaskState) -> TaskState:
    """The client answered: waiting_for_input -> running (the caller checks it waits)."""
    assert state.status is TaskStatus.WAITING_FOR_INPUT
    assert state.question is not None
    return replace(state, status=TaskStatus.RUNNING, question=None, answered=state.question.id)
