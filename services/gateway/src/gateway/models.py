"""The public API's shapes, for validation of what the gateway reads and for the OpenAPI document.

Answers are relayed byte for byte from the owning services; these models describe them, they do
not re-serialise them. The services that own the objects remain the authority on their rules.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

TaskStatus = Literal["queued", "running", "cancelling", "succeeded", "failed", "cancelled"]


class NewTask(BaseModel):
    """Body of ``POST /v1/tasks``."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(description="What the agent should do.")
    model: str | None = Field(default=None, description="Model to run; the default when omitted.")
    metadata: dict[str, Any] | None = Field(
        default=None, description="Your own data, returned with the task."
    )


class Usage(BaseModel):
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int


class TaskError(BaseModel):
    code: str
    message: str


class TaskResult(BaseModel):
    summary: str


class Task(BaseModel):
    id: UUID
    status: TaskStatus
    prompt: str
    model: str
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    usage: Usage
    error: TaskError | None
    result: TaskResult | None


class TaskPage(BaseModel):
    items: list[Task]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class Artifact(BaseModel):
    id: UUID
    task_id: UUID
    name: str
    content_type: str
    size: int
    sha256: str
    created_at: datetime


class ArtifactList(BaseModel):
    items: list[Artifact]


class ArtifactDownload(Artifact):
    download_url: str = Field(description="Presigned URL; fetch it before it expires.")
    download_url_expires_at: datetime


class TimelineEvent(BaseModel):
    """One event of a task's timeline: the `data:` line of the stream (`id:` = seq,
    `event:` = type)."""

    type: str = Field(description="The event name, e.g. task.progressed.")
    seq: int = Field(description="Position in the task's timeline: 1, 2, 3 ...")
    task_id: UUID
    occurred_at: datetime
    data: dict[str, Any]
    event_id: str


class ProblemDetails(BaseModel):
    """An error (RFC 9457, ``application/problem+json``)."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[dict[str, str]] | None = Field(
        default=None, description="For a 422: each field that did not fit, and why."
    )
