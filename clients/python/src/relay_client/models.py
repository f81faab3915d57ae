"""The public API's objects, as the client reads them. Names and fields follow the components
of the published OpenAPI document (contracts/openapi.json; a test keeps them in step). Fields
the server adds later are kept (``extra="allow"``), so an older client keeps working."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

TaskStatus = Literal[
    "queued", "running", "waiting_for_input", "cancelling", "succeeded", "failed", "cancelled"
]
TERMINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
TERMINAL_EVENTS: frozenset[str] = frozenset({f"task.{s}" for s in TERMINAL_STATUSES})
DeliveryStatus = Literal["pending", "succeeded", "failed"]


class Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class TaskLimits(Model):
    max_turns: int
    max_output_tokens: int
    max_wall_seconds: float
    max_cost_usd: float | None
    max_wait_seconds: float | None = None  # absent on tasks from before human input


class NewTaskLimits(Model):
    """Budgets a new task asks for; each one left out gets the service's default."""

    max_turns: int | None = None
    max_output_tokens: int | None = None
    max_wall_seconds: float | None = None
    max_cost_usd: float | None = None
    max_wait_seconds: float | None = None  # how long a question may wait for its answer


class Usage(Model):
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    cost_usd: float


class TaskError(Model):
    code: str
    message: str
    budget: str | None = None


class TaskResult(Model):
    summary: str


class TaskQuestion(Model):
    """What a ``waiting_for_input`` task asks; answer it with ``tasks.input`` (also exported
    as ``relay_client.Question``)."""

    id: UUID
    text: str
    asked_at: datetime


class Task(Model):
    id: UUID
    status: TaskStatus
    prompt: str
    model: str
    metadata: dict[str, str]
    limits: TaskLimits | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    usage: Usage
    error: TaskError | None
    result: TaskResult | None
    question: TaskQuestion | None = None  # set while the task is waiting_for_input

    @property
    def done(self) -> bool:
        """The task has ended (succeeded, failed or cancelled): it changes no more."""
        return self.status in TERMINAL_STATUSES

    @property
    def waiting(self) -> bool:
        """The task asked ``question`` and waits for the answer (``tasks.input``)."""
        return self.status == "waiting_for_input"


class TaskPage(Model):
    items: list[Task]
    next_cursor: str | None


class Artifact(Model):
    id: UUID
    task_id: UUID
    name: str
    content_type: str
    size: int
    sha256: str
    created_at: datetime


class ArtifactList(Model):
    items: list[Artifact]


class ArtifactDownload(Artifact):
    download_url: str
    download_url_expires_at: datetime


class TimelineEvent(Model):
    """One event of a task's timeline, as SSE, the WebSocket and webhooks carry it."""

    type: str
    seq: int
    task_id: UUID
    occurred_at: datetime
    data: dict[str, Any]
    event_id: UUID

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL_EVENTS


class WebhookEndpoint(Model):
    id: UUID
    url: str
    event_types: list[str]
    description: str
    enabled: bool
    disabled_reason: str | None
    created_at: datetime


class WebhookEndpointList(Model):
    items: list[WebhookEndpoint]


class WebhookEndpointWithSecret(WebhookEndpoint):
    secret: str


class WebhookSecret(Model):
    secret: str
    previous_secret_expires_at: datetime


class WebhookDelivery(Model):
    id: UUID
    event_id: UUID
    type: str
    task_id: UUID | None
    seq: int | None
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime


class WebhookDeliveryPage(Model):
    items: list[WebhookDelivery]
    next_cursor: str | None


class WebhookReplayQueued(Model):
    queued: int


class WebhookTestQueued(Model):
    event_id: UUID


class ProblemDetails(Model):
    """An error answer (RFC 9457 problem+json)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[dict[str, str]] | None = None
    limit: str | None = None  # on a 429: the limit it went past (requests, submits)
