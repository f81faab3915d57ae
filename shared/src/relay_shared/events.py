"""The event catalog: one pydantic model per domain event, with its wire name.

The wire name (``name``) is the EventBridge ``detail-type``, the timeline's event type and the SSE
``event:`` field. It is written out explicitly and never derived from a class name. The JSON
Schemas and the AsyncAPI document in ``contracts/`` are generated from these classes.

``detail`` on the bus is ``{"metadata": {...}, "data": {...}}``. Readers ignore fields they do not
know, so producers may add optional fields without a new ``schema_version``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Self
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from relay_shared.tracing import current_traceparent


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Usage(_Tolerant):
    """Token usage as the Messages API reports it."""

    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cache_creation_input_tokens: int = Field(default=0, ge=0)
    cache_read_input_tokens: int = Field(default=0, ge=0)

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_creation_input_tokens=self.cache_creation_input_tokens
            + other.cache_creation_input_tokens,
            cache_read_input_tokens=self.cache_read_input_tokens + other.cache_read_input_tokens,
        )


class EventMetadata(_Tolerant):
    event_id: UUID = Field(description="Unique per event; the dedupe key for every consumer.")
    schema_version: int = Field(ge=1)
    occurred_at: AwareDatetime
    producer: str = Field(description="The publishing service, e.g. 'tasks'.")
    tenant_id: str
    task_id: UUID
    correlation_id: str = Field(description="Shared by every event of one task's flow.")
    causation_id: str | None = Field(default=None, description="event_id of the cause.")
    traceparent: str | None = Field(default=None, description="W3C trace context.")


class DomainEvent(_Tolerant):
    """Base of every catalog event. Subclasses set the ClassVars and narrow ``data``."""

    name: ClassVar[str]
    producer: ClassVar[str]
    schema_version: ClassVar[int] = 1
    description: ClassVar[str] = ""
    # Client-visible events go to timelines, SSE and webhooks; internal ones do not.
    client_visible: ClassVar[bool] = True
    terminal: ClassVar[bool] = False

    metadata: EventMetadata
    data: _Tolerant

    @classmethod
    def create(
        cls,
        data: Any,
        *,
        tenant_id: str,
        task_id: UUID,
        caused_by: EventMetadata | None = None,
        correlation_id: str | None = None,
        traceparent: str | None = None,
        event_id: UUID | None = None,
        occurred_at: datetime | None = None,
    ) -> Self:
        """A new event; ``caused_by`` carries correlation and causation forward. Its
        ``traceparent`` is the current span's (else the cause's): see tracing.py."""
        if correlation_id is None:
            correlation_id = caused_by.correlation_id if caused_by else str(task_id)
        metadata = EventMetadata(
            event_id=event_id or uuid4(),
            schema_version=cls.schema_version,
            occurred_at=occurred_at or datetime.now(UTC),
            producer=cls.producer,
            tenant_id=tenant_id,
            task_id=task_id,
            correlation_id=correlation_id,
            causation_id=str(caused_by.event_id) if caused_by else None,
            traceparent=traceparent
            or current_traceparent()
            or (caused_by.traceparent if caused_by else None),
        )
        return cls(metadata=metadata, data=data)

    @classmethod
    def source(cls) -> str:
        """EventBridge ``source``: a service publishes only its own."""
        return f"relay.{cls.producer}"

    def detail(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# --- task lifecycle -------------------------------------------------------------------------


class TaskLimits(_Tolerant):
    """A task's budgets, enforced by the agent while it runs (the tasks service fills defaults
    and refuses values above the configured maxima)."""

    max_turns: int = Field(ge=1, description="Model calls allowed.")
    max_output_tokens: int = Field(ge=1, description="Output tokens allowed, over all calls.")
    max_wall_seconds: float = Field(gt=0, description="Time allowed from start to end.")
    max_cost_usd: float | None = Field(
        default=None, gt=0, description="Estimated spend allowed (price table), if any."
    )
    max_wait_seconds: float | None = Field(
        default=None,
        gt=0,
        description="How long the task may wait for an answer to a question before it fails"
        " with input_timeout; absent: the agent's default. Waiting is not wall time.",
    )


class TaskSubmittedData(_Tolerant):
    prompt: str
    model: str
    metadata: dict[str, str] = Field(default_factory=dict)
    limits: TaskLimits | None = Field(
        default=None, description="Absent in events from before budgets: agent defaults apply."
    )


class TaskSubmitted(DomainEvent):
    name = "task.submitted"
    producer = "tasks"
    description = "A task was accepted and stored."
    data: TaskSubmittedData


class TaskCancelRequestedData(_Tolerant):
    reason: str | None = None


class TaskCancelRequested(DomainEvent):
    name = "task.cancel_requested"
    producer = "tasks"
    description = "A client asked to cancel the task."
    data: TaskCancelRequestedData


class ResumePoint(_Tolerant):
    """Where a resumed attempt picks the conversation up: after the answer to ``question_id``,
    asked in step ``step``. Steps 1..step count as this attempt's (ADR 0022)."""

    question_id: UUID
    step: int = Field(ge=1)


class TaskStartedData(_Tolerant):
    attempt: int = Field(
        ge=1, description="1 for the first run; higher after a redelivery or an answer."
    )
    worker_id: str
    resumed: ResumePoint | None = Field(
        default=None, description="Set when the attempt resumes a task after its answer."
    )


class TaskStarted(DomainEvent):
    name = "task.started"
    producer = "agent"
    description = "A worker began an attempt."
    data: TaskStartedData


class TaskProgressedData(_Tolerant):
    attempt: int = Field(ge=1)
    step: int = Field(ge=1, description="1..n within the attempt.")
    message: str
    usage: Usage = Field(description="Usage of the attempt so far.")
    cost_usd: float = Field(default=0.0, ge=0, description="Estimated cost of the attempt so far.")


class TaskProgressed(DomainEvent):
    name = "task.progressed"
    producer = "agent"
    description = "One agent step finished."
    data: TaskProgressedData


class TaskInputRequestedData(_Tolerant):
    attempt: int = Field(ge=1)
    step: int = Field(ge=1, description="The step whose tool call asked.")
    question_id: UUID
    question: str
    usage: Usage = Field(default_factory=Usage, description="Usage of the task so far.")
    cost_usd: float = Field(default=0.0, ge=0, description="Estimated cost of the task so far.")


class TaskInputRequested(DomainEvent):
    name = "task.input_requested"
    producer = "agent"
    description = "The task waits for the client's answer to a question; no worker holds it."
    data: TaskInputRequestedData


class TaskInputProvidedData(_Tolerant):
    question_id: UUID
    text: str = Field(description="The client's answer.")


class TaskInputProvided(DomainEvent):
    name = "task.input_provided"
    producer = "tasks"
    description = "The client answered the task's question; the task resumes on any worker."
    data: TaskInputProvidedData


class TerminalData(_Tolerant):
    attempt: int = Field(ge=0, description="0 when the task ended before any attempt started.")
    steps: int = Field(default=0, ge=0, description="task.progressed events in this attempt.")
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = Field(default=0.0, ge=0, description="Estimated cost (price table).")
    artifact_ids: list[UUID] = Field(
        default_factory=list, description="Artifacts uploaded in this attempt."
    )


class TaskSucceededData(TerminalData):
    summary: str


class TaskSucceeded(DomainEvent):
    name = "task.succeeded"
    producer = "agent"
    terminal = True
    description = "Terminal: the task is done."
    data: TaskSucceededData


class TaskFailedData(TerminalData):
    code: str = Field(description="Machine-readable reason, e.g. 'budget_exceeded'.")
    message: str
    budget: str | None = Field(
        default=None, description="With code budget_exceeded: which limit, e.g. 'max_turns'."
    )


class TaskFailed(DomainEvent):
    name = "task.failed"
    producer = "agent"
    terminal = True
    description = "Terminal: the task failed."
    data: TaskFailedData


class TaskCancelledData(TerminalData):
    reason: str | None = None


class TaskCancelled(DomainEvent):
    name = "task.cancelled"
    producer = "agent"
    terminal = True
    description = "Terminal: the task stopped on request."
    data: TaskCancelledData


# --- artifacts ------------------------------------------------------------------------------


class ArtifactProvenance(_Tolerant):
    """Which agent step wrote the artifact: timelines show it after that step (ADR 5)."""

    attempt: int | None = Field(default=None, ge=1)
    step: int | None = Field(default=None, ge=1)


class ArtifactUploadedData(ArtifactProvenance):
    artifact_id: UUID
    name: str
    content_type: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bucket: str
    key: str = Field(
        description="Where the agent uploaded the file: its attempt's own key under artifacts/."
    )


class ArtifactUploaded(DomainEvent):
    name = "artifact.uploaded"
    producer = "agent"
    client_visible = False
    description = "A file is uploaded and waits for verification (internal)."
    data: ArtifactUploadedData


class ArtifactPublishedData(ArtifactProvenance):
    artifact_id: UUID
    name: str
    content_type: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class ArtifactPublished(DomainEvent):
    name = "artifact.published"
    producer = "artifacts"
    description = "A verified artifact is available for download."
    data: ArtifactPublishedData


CATALOG: Mapping[str, type[DomainEvent]] = {
    cls.name: cls
    for cls in (
        TaskSubmitted,
        TaskCancelRequested,
        TaskStarted,
        TaskProgressed,
        TaskInputRequested,
        TaskInputProvided,
        TaskSucceeded,
        TaskFailed,
        TaskCancelled,
        ArtifactUploaded,
        ArtifactPublished,
    )
}
TERMINAL_EVENTS = frozenset(name for name, cls in CATALOG.items() if cls.terminal)
CLIENT_VISIBLE_EVENTS = frozenset(name for name, cls in CATALOG.items() if cls.client_visible)


class UnknownEvent(ValueError):
    """A detail-type that is not in the catalog."""


def parse_event(detail_type: str, detail: Mapping[str, Any]) -> DomainEvent:
    """Parse a bus event into its catalog model (raises UnknownEvent or ValidationError)."""
    try:
        cls = CATALOG[detail_type]
    except KeyError:
        raise UnknownEvent(detail_type) from None
    return cls.model_validate(detail)
