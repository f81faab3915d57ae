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


class NewTaskLimits(BaseModel):
    """Budgets a new task asks for; each one left out (or null) gets the service's default. A
    value outside its range is a 422 that names the range."""

    # The gateway checks the shape only. The tasks service checks each value against its range
    # (the minimum, and a maximum that is its setting), so every range error reads the same;
    # the minimum is in the schema for clients. Strict: a count is a JSON integer and a number a
    # JSON number, never a string or a bool.
    model_config = ConfigDict(extra="forbid", strict=True)

    max_turns: int | None = Field(
        default=None,
        description="Model calls allowed. At least 1; at most 200 by default.",
        json_schema_extra={"minimum": 1},
    )
    max_output_tokens: int | None = Field(
        default=None,
        description="Output tokens allowed over all model calls. At least 1; at most 200000 by "
        "default.",
        json_schema_extra={"minimum": 1},
    )
    max_wall_seconds: float | None = Field(
        default=None,
        allow_inf_nan=False,
        description="Seconds the task may run. At least 1; at most 21600 by default.",
        json_schema_extra={"minimum": 1},
    )
    max_cost_usd: float | None = Field(
        default=None,
        allow_inf_nan=False,
        description="Estimated spend allowed, in USD. At least 0.01; at most 100 by default. "
        "Without it the task has no cost limit unless the service sets a default.",
        json_schema_extra={"minimum": 0.01},
    )


class NewTask(BaseModel):
    """Body of ``POST /v1/tasks``."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(description="What the agent should do.")
    model: str | None = Field(
        default=None,
        description="Model to run, one the service allows (claude-opus-4-1, claude-sonnet-4-5, "
        "claude-haiku-4-5 by default); the default model when omitted.",
    )
    metadata: dict[str, str] | None = Field(
        default=None,
        description="Your own data, returned with the task: up to 16 keys of 1-64 characters, "
        "string values of up to 512 characters.",
    )
    limits: NewTaskLimits | None = Field(
        default=None, description="Budgets for this task; the defaults when omitted."
    )


class CancelRequest(BaseModel):
    """Optional body of ``POST /v1/tasks/{id}/cancel``."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(
        default=None, max_length=500, description="Why; passed on with the cancel request."
    )


class TaskLimits(BaseModel):
    """The task's effective budgets: what it asked for, with the defaults filled in."""

    max_turns: int
    max_output_tokens: int
    max_wall_seconds: float
    max_cost_usd: float | None = Field(description="Null: no cost limit.")


class Usage(BaseModel):
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    cost_usd: float = Field(description="Estimated cost in USD, from the agent's price table.")


class TaskError(BaseModel):
    code: str = Field(description="e.g. budget_exceeded, invalid_request, provider_auth_failed.")
    message: str
    budget: str | None = Field(
        description="With code budget_exceeded: max_turns, max_output_tokens, max_wall_seconds "
        "or max_cost_usd; else null."
    )


class TaskResult(BaseModel):
    summary: str


class Task(BaseModel):
    id: UUID
    status: TaskStatus
    prompt: str
    model: str
    metadata: dict[str, str]
    limits: TaskLimits | None = Field(description="Null only for tasks from before budgets.")
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
    event_id: UUID


class WsTicket(BaseModel):
    ticket: str = Field(
        description="Works once, for this tenant: `/v1/ws?ticket=` or "
        "`/v1/tasks/{id}/events?ticket=`."
    )
    expires_in: int = Field(description="Seconds until the ticket expires unused.")


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
