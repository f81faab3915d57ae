"""Causal ordering rules: what each event needs in the timeline before it, and what it adds.

Every event is reduced to a ``Causality``: the facts it ``requires`` (its predecessors) and the
facts it ``provides`` once appended. Facts are short strings, so a timeline's state is a set of
them and readiness is a subset check. Rules are a registry keyed by event name.

    task.submitted           requires nothing
    task.cancel_requested    requires task.submitted
    task.started (a)         requires task.submitted; resumed after question q in step k: also
                             task.input_provided (q), and it provides task.progressed (a, 1..k)
                             (the steps before the question count as the resumed attempt's)
    task.progressed (a, k)   requires task.started (a) and task.progressed (a, k-1) when k > 1
    task.input_requested     requires task.progressed (a, k), the step that asked (q, a, k)
    task.input_provided (q)  requires task.input_requested (q)
    artifact.published (a,k) requires task.progressed (a, k), the step that wrote it; without
                             that provenance, task.started (a), or any task.started
    terminal (a, steps, ids) requires task.submitted; when a >= 1 also task.started (a) and
                             task.progressed (a, 1..steps); and artifact.published for each id
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from relay_shared.events import (
    ArtifactPublished,
    DomainEvent,
    TaskCancelled,
    TaskCancelRequested,
    TaskFailed,
    TaskInputProvided,
    TaskInputRequested,
    TaskProgressed,
    TaskStarted,
    TaskSubmitted,
    TaskSucceeded,
    TerminalData,
)

SUBMITTED = "submitted"
STARTED_ANY = "started"


def started(attempt: int) -> str:
    return f"started:{attempt}"


def progressed(attempt: int, step: int) -> str:
    return f"progressed:{attempt}:{step}"


def published(artifact_id: UUID) -> str:
    return f"artifact:{artifact_id}"


def asked(question_id: UUID) -> str:
    return f"asked:{question_id}"


def answered(question_id: UUID) -> str:
    return f"answered:{question_id}"


@dataclass(frozen=True)
class Causality:
    provides: frozenset[str] = frozenset()
    requires: frozenset[str] = frozenset()
    terminal: bool = False


def _submitted(_event: TaskSubmitted) -> Causality:
    return Causality(provides=frozenset({SUBMITTED}))


def _cancel_requested(_event: TaskCancelRequested) -> Causality:
    return Causality(requires=frozenset({SUBMITTED}))


def _started(event: TaskStarted) -> Causality:
    attempt, resumed = event.data.attempt, event.data.resumed
    provides = {STARTED_ANY, started(attempt)}
    requires = {SUBMITTED}
    if resumed is not None:
        provides.update(progressed(attempt, step) for step in range(1, resumed.step + 1))
        requires.add(answered(resumed.question_id))
    return Causality(provides=frozenset(provides), requires=frozenset(requires))


def _input_requested(event: TaskInputRequested) -> Causality:
    data = event.data
    return Causality(
        provides=frozenset({asked(data.question_id)}),
        requires=frozenset({progressed(data.attempt, data.step)}),
    )


def _input_provided(event: TaskInputProvided) -> Causality:
    question_id = event.data.question_id
    return Causality(
        provides=frozenset({answered(question_id)}), requires=frozenset({asked(question_id)})
    )


def _progressed(event: TaskProgressed) -> Causality:
    attempt, step = event.data.attempt, event.data.step
    requires = {started(attempt)}
    if step > 1:
        requires.add(progressed(attempt, step - 1))
    return Causality(provides=frozenset({progressed(attempt, step)}), requires=frozenset(requires))


def _artifact_published(event: ArtifactPublished) -> Causality:
    attempt, step = event.data.attempt, event.data.step
    if attempt is not None and step is not None:
        after = progressed(attempt, step)  # shown after the step that wrote it
    elif attempt is not None:
        after = started(attempt)
    else:
        after = STARTED_ANY
    return Causality(
        provides=frozenset({published(event.data.artifact_id)}), requires=frozenset({after})
    )


def _terminal(event: DomainEvent) -> Causality:
    data = event.data
    assert isinstance(data, TerminalData)
    requires = {SUBMITTED, *(published(artifact_id) for artifact_id in data.artifact_ids)}
    if data.attempt >= 1:
        requires.add(started(data.attempt))
        requires.update(progressed(data.attempt, step) for step in range(1, data.steps + 1))
    return Causality(requires=frozenset(requires), terminal=True)


RULES: Mapping[str, Callable[[Any], Causality]] = {
    TaskSubmitted.name: _submitted,
    TaskCancelRequested.name: _cancel_requested,
    TaskStarted.name: _started,
    TaskProgressed.name: _progressed,
    TaskInputRequested.name: _input_requested,
    TaskInputProvided.name: _input_provided,
    ArtifactPublished.name: _artifact_published,
    TaskSucceeded.name: _terminal,
    TaskFailed.name: _terminal,
    TaskCancelled.name: _terminal,
}


def causality(event: DomainEvent) -> Causality:
    """The event's place in the causal order (KeyError for an event timelines do not hold)."""
    return RULES[event.name](event)
