"""Canonical sample events for notifier tests, built with the catalog models."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from relay_shared.events import (
    ArtifactPublished,
    ArtifactPublishedData,
    DomainEvent,
    ResumePoint,
    TaskCancelled,
    TaskCancelledData,
    TaskCancelRequested,
    TaskCancelRequestedData,
    TaskFailed,
    TaskFailedData,
    TaskInputProvided,
    TaskInputProvidedData,
    TaskInputRequested,
    TaskInputRequestedData,
    TaskProgressed,
    TaskProgressedData,
    TaskStarted,
    TaskStartedData,
    TaskSubmitted,
    TaskSubmittedData,
    TaskSucceeded,
    TaskSucceededData,
    Usage,
)

SHA = "0" * 64


class TaskEvents:
    """One task's events, each created with a later occurred_at than the previous one."""

    def __init__(self, tenant_id: str = "acme", task_id: UUID | None = None) -> None:
        self.tenant_id = tenant_id
        self.task_id = task_id or uuid.uuid4()
        self._clock = datetime(2025, 1, 1, tzinfo=UTC)

    def _meta(self) -> dict[str, object]:
        self._clock += timedelta(milliseconds=10)
        return {"tenant_id": self.tenant_id, "task_id": self.task_id, "occurred_at": self._clock}

    def submitted(self) -> TaskSubmitted:
        return TaskSubmitted.create(
            TaskSubmittedData(prompt="write a poem", model="scripted"), **self._meta()
        )

    def cancel_requested(self) -> TaskCancelRequested:
        return TaskCancelRequested.create(TaskCancelRequestedData(reason="bored"), **self._meta())

    def started(self, attempt: int = 1) -> TaskStarted:
        return TaskStarted.create(TaskStartedData(attempt=attempt, worker_id="w-1"), **self._meta())

    def resumed(self, attempt: int, question_id: UUID, step: int) -> TaskStarted:
        return TaskStarted.create(
            TaskStartedData(
                attempt=attempt,
                worker_id="w-2",
                resumed=ResumePoint(question_id=question_id, step=step),
            ),
            **self._meta(),
        )

    def input_requested(self, question_id: UUID, *, attempt: int, step: int) -> TaskInputRequested:
        return TaskInputRequested.create(
            TaskInputRequestedData(
                attempt=attempt, step=step, question_id=question_id, question="Which region?"
            ),
            **self._meta(),
        )

    def input_provided(self, question_id: UUID) -> TaskInputProvided:
        return TaskInputProvided.create(
            TaskInputProvidedData(question_id=question_id, text="eu-west-1"), **self._meta()
        )

    def progressed(self, step: int, attempt: int = 1) -> TaskProgressed:
        return TaskProgressed.create(
            TaskProgressedData(
                attempt=attempt,
                step=step,
                message=f"step {step}",
                usage=Usage(input_tokens=10 * step, output_tokens=5 * step),
            ),
            **self._meta(),
        )

    def published(
        self,
        artifact_id: UUID | None = None,
        *,
        attempt: int | None = None,
        step: int | None = None,
    ) -> ArtifactPublished:
        """artifact.published; ``attempt`` and ``step`` name the agent step that wrote it (an
        upload from before provenance has neither)."""
        return ArtifactPublished.create(
            ArtifactPublishedData(
                artifact_id=artifact_id or uuid.uuid4(),
                name="result.md",
                content_type="text/markdown",
                size=12,
                sha256=SHA,
                attempt=attempt,
                step=step,
            ),
            **self._meta(),
        )

    def succeeded(
        self, *, attempt: int = 1, steps: int = 0, artifact_ids: list[UUID] | None = None
    ) -> TaskSucceeded:
        return TaskSucceeded.create(
            TaskSucceededData(
                attempt=attempt, steps=steps, artifact_ids=artifact_ids or [], summary="done"
            ),
            **self._meta(),
        )

    def failed(self, *, attempt: int = 1, steps: int = 0) -> TaskFailed:
        return TaskFailed.create(
            TaskFailedData(attempt=attempt, steps=steps, code="scripted_failure", message="no"),
            **self._meta(),
        )

    def cancelled(self, *, attempt: int = 0, steps: int = 0) -> TaskCancelled:
        return TaskCancelled.create(
            TaskCancelledData(attempt=attempt, steps=steps, reason="asked"), **self._meta()
        )

    def run(self, *, steps: int = 3, written_on: Sequence[int] = ()) -> list[DomainEvent]:
        """A whole successful run of attempt 1 in causal order: submitted, started, progressed
        1..steps, each followed by artifact.published for the artifacts that step wrote, and
        succeeded. ``written_on`` is the step of each artifact (default: one, on the last)."""
        written = sorted(written_on or [steps])
        assert all(1 <= k <= steps for k in written), "an artifact is written by a step of the run"
        events: list[DomainEvent] = [self.submitted(), self.started()]
        artifact_ids: list[UUID] = []
        for k in range(1, steps + 1):
            events.append(self.progressed(k))
            for _ in range(written.count(k)):
                artifact = self.published(attempt=1, step=k)
                artifact_ids.append(artifact.data.artifact_id)
                events.append(artifact)
        events.append(self.succeeded(steps=steps, artifact_ids=artifact_ids))
        return events


@pytest.fixture
def task_events() -> Callable[..., TaskEvents]:
    return TaskEvents
