"""Canonical sample events for notifier tests, built with the catalog models."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from relay_shared.events import (
    ArtifactPublished,
    ArtifactPublishedData,
    DomainEvent,
    TaskCancelled,
    TaskCancelledData,
    TaskCancelRequested,
    TaskCancelRequestedData,
    TaskFailed,
    TaskFailedData,
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

    def published(self, artifact_id: UUID | None = None) -> ArtifactPublished:
        return ArtifactPublished.create(
            ArtifactPublishedData(
                artifact_id=artifact_id or uuid.uuid4(),
                name="result.md",
                content_type="text/markdown",
                size=12,
                sha256=SHA,
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

    def run(self, *, steps: int = 3) -> list[DomainEvent]:
        """A whole successful run in causal order: submitted, started, progressed 1..steps,
        artifact.published, succeeded."""
        events: list[DomainEvent] = [self.submitted(), self.started()]
        events += [self.progressed(k) for k in range(1, steps + 1)]
        artifact = self.published()
        events += [artifact, self.succeeded(steps=steps, artifact_ids=[artifact.data.artifact_id])]
        return events


@pytest.fixture
def task_events() -> Callable[..., TaskEvents]:
    return TaskEvents
