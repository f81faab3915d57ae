"""Canonical sample events for the artifacts tests, built with the catalog models."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from uuid import UUID, uuid4

import pytest

from relay_shared.events import ArtifactUploaded, ArtifactUploadedData

UNIT_BUCKET = "relay-local-artifacts"


def uploaded(
    body: bytes,
    *,
    bucket: str = UNIT_BUCKET,
    name: str = "result.md",
    content_type: str = "text/markdown; charset=utf-8",
    tenant_id: str = "acme",
    task_id: UUID | None = None,
    artifact_id: UUID | None = None,
    key: str | None = None,
    size: int | None = None,
    sha256: str | None = None,
    occurred_at: datetime | None = None,
    attempt: int | None = 1,
    step: int | None = 1,
) -> ArtifactUploaded:
    """artifact.uploaded as the agent emits it for ``body``; override a field to break it."""
    task_id = task_id or uuid4()
    artifact_id = artifact_id or uuid4()
    return ArtifactUploaded.create(
        ArtifactUploadedData(
            artifact_id=artifact_id,
            name=name,
            content_type=content_type,
            size=len(body) if size is None else size,
            sha256=sha256 or hashlib.sha256(body).hexdigest(),
            bucket=bucket,
            key=key
            if key is not None
            else upload_key(tenant_id, task_id, artifact_id, attempt, name),
            attempt=attempt,
            step=step,
        ),
        tenant_id=tenant_id,
        task_id=task_id,
        occurred_at=occurred_at,
    )


def upload_key(
    tenant_id: str, task_id: UUID, artifact_id: UUID, attempt: int | None, name: str
) -> str:
    """Where the agent uploads (agent.artifacts.upload_key)."""
    return f"artifacts/{tenant_id}/{task_id}/{artifact_id}/{attempt}/{name}"


def again(event: ArtifactUploaded) -> ArtifactUploaded:
    """The same upload under a new event id: the agent re-running the task (the next attempt,
    writing the same file in the same step, to that attempt's own key)."""
    meta, data = event.metadata, event.data
    attempt = (data.attempt or 0) + 1
    key = upload_key(meta.tenant_id, meta.task_id, data.artifact_id, attempt, data.name)
    data = data.model_copy(update={"attempt": attempt, "key": key})
    return ArtifactUploaded.create(
        data, tenant_id=event.metadata.tenant_id, task_id=event.metadata.task_id
    )


@pytest.fixture
def upload_event() -> Callable[..., ArtifactUploaded]:
    return uploaded


@pytest.fixture
def rerun() -> Callable[[ArtifactUploaded], ArtifactUploaded]:
    return again
