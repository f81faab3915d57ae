"""The public API's shapes, for validation of what the gateway reads and for the OpenAPI document.

Answers are relayed byte for byte from the owning services; these models describe them, they do
not re-serialise them. The services that own the objects remain the authority on their rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue, WithJsonSchema
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from relay_shared.events import CATALOG

TaskStatus = Literal[
    "queued", "running", "waiting_for_input", "cancelling", "succeeded", "failed", "cancelled"
]

# --- Text: every string of a request body --------------------------------------------------------

# What every string of a request body must match: no NUL. (A lone surrogate is refused too, but
# a pattern cannot say so portably: an ECMA-262 regex without the u flag sees UTF-16 code units.)
NO_NUL_PATTERN = r"^[^\u0000]*$"


def storable_text(value: str) -> str:
    """``value``, if every service can store it: PostgreSQL's text and jsonb take neither a NUL
    (U+0000) nor a lone surrogate (not UTF-8), so either is a 422 here rather than a 5xx from
    the service that owns the field."""
    if "\x00" in value:
        raise PydanticCustomError("text_nul", "the text must not contain a NUL character (U+0000)")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise PydanticCustomError(
            "text_surrogate", "the text must not contain a lone surrogate (U+D800-U+DFFF)"
        ) from None
    return value


@dataclass(frozen=True)
class _Storable:
    """Annotation that makes a string :func:`storable_text`, with ``NO_NUL_PATTERN`` in its JSON
    schema so clients can tell before they send."""

    def __get_pydantic_core_schema__(
        self, source: type[Any], handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_after_validator_function(storable_text, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = NO_NUL_PATTERN
        return json_schema


# Every string of every public request body is storable (services/gateway/tests/unit/test_text.py
# holds the request models to it), so none carries what a service cannot store. STORABLE goes
# last in an ``Annotated``: a length limit after it would be checked as a generic one, whose error
# counts "items".
STORABLE = _Storable()
Text = Annotated[str, STORABLE]
# An object of Text keys and values (pydantic would document its keys' pattern as
# ``patternProperties``, which leaves other keys unconstrained).
TextMap = Annotated[
    dict[Text, Text],
    WithJsonSchema(
        {
            "type": "object",
            "propertyNames": {"pattern": NO_NUL_PATTERN},
            "additionalProperties": {"type": "string", "pattern": NO_NUL_PATTERN},
        }
    ),
]


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
    max_wait_seconds: float | None = Field(
        default=None,
        allow_inf_nan=False,
        description="Seconds the task may wait for your answer to a question before it fails "
        "with `input_timeout`. At least 1; 86400 by default, at most 604800 by default. "
        "Waiting is not counted as wall time.",
        json_schema_extra={"minimum": 1},
    )


class NewTask(BaseModel):
    """Body of ``POST /v1/tasks``."""

    model_config = ConfigDict(extra="forbid")

    prompt: Text = Field(description="What the agent should do.")
    model: Text | None = Field(
        default=None,
        description="Model to run, one the service allows (claude-opus-4-1, claude-sonnet-4-5, "
        "claude-haiku-4-5 by default); the default model when omitted.",
    )
    metadata: TextMap | None = Field(
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

    reason: Annotated[str, Field(max_length=500), STORABLE] | None = Field(
        default=None, description="Why; passed on with the cancel request."
    )


class TaskInput(BaseModel):
    """Body of ``POST /v1/tasks/{id}/input``: the answer to the task's question."""

    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, Field(min_length=1), STORABLE] = Field(
        description="Your answer, as the agent will read it: not blank, at most 16000 "
        "characters (a setting of the service; longer is a 413)."
    )
    question_id: UUID | None = Field(
        default=None,
        description="The `question.id` you answer (from the task or its "
        "`task.input_requested` event); when given and the task waits on another question, or "
        "was answered on this one already, the answer is a 409. Send it when you answer from the "
        "event: the event can reach you a moment before the task record has the question, and "
        "an answer naming a question the record has not seen yet waits for it (up to 5 s by "
        "default) instead of a 409.",
    )


class TaskLimits(BaseModel):
    """The task's effective budgets: what it asked for, with the defaults filled in."""

    max_turns: int
    max_output_tokens: int
    max_wall_seconds: float
    max_cost_usd: float | None = Field(description="Null: no cost limit.")
    max_wait_seconds: float | None = Field(
        description="Null only for tasks from before questions existed."
    )


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


class TaskQuestion(BaseModel):
    """What the task asks you; answer with `POST /v1/tasks/{id}/input`."""

    id: UUID
    text: str
    asked_at: datetime


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
    question: TaskQuestion | None = Field(
        description="Set while the task is `waiting_for_input`; else null."
    )


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


# --- Webhooks (DESIGN.md, *Webhooks (contract)*; the notifier owns them) ---

# What an endpoint may ask for: the events of a task's timeline, in the catalog's order
# (tests/architecture/test_public_shapes.py keeps it the notifier's list).
WEBHOOK_EVENT_TYPES: tuple[str, ...] = tuple(
    name for name, event in CATALOG.items() if event.client_visible
)
ALL_EVENT_TYPES = "*"
DeliveryStatus = Literal["pending", "succeeded", "failed"]

WebhookUrl = Annotated[
    str,
    Field(
        max_length=2048,
        description="Where deliveries are POSTed: an `https://` (or `http://`) URL that resolves "
        "to a public address (else 422). No credentials or fragment in it: verify the signature "
        "instead.",
        examples=["https://example.com/relay-webhooks"],
    ),
    STORABLE,
]
EventTypes = Annotated[
    list[Text],
    Field(
        min_length=1,
        max_length=len(WEBHOOK_EVENT_TYPES),
        description='Event names to deliver, or `["*"]` (alone) for all of them: '
        + ", ".join(f"`{name}`" for name in WEBHOOK_EVENT_TYPES)
        + ". An unknown name is a 422.",
        examples=[["task.succeeded", "task.failed"]],
    ),
]
Description = Annotated[
    str, Field(max_length=500, description="Your own note: what the endpoint is for."), STORABLE
]


def _check_url(value: str) -> str:
    """The URL's scheme and host; the rest of its shape, and where it resolves to, is the
    notifier's to judge (its 422 is relayed)."""
    try:
        parts = urlsplit(value)
        _ = parts.port  # a port that is not a number raises here
    except ValueError as exc:
        raise ValueError(f"not a URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise ValueError("the scheme must be https or http")
    if not parts.hostname:
        raise ValueError("the URL must name a host")
    return value


def _check_event_types(value: list[str]) -> list[str]:
    if ALL_EVENT_TYPES in value:
        if value != [ALL_EVENT_TYPES]:
            raise ValueError('"*" stands alone: it already means every event type')
        return value
    unknown = sorted(set(value) - set(WEBHOOK_EVENT_TYPES))
    if unknown:
        raise ValueError(
            f"unknown event type(s) {', '.join(unknown)}; known: {', '.join(WEBHOOK_EVENT_TYPES)}"
        )
    return value


class NewWebhookEndpoint(BaseModel):
    """Body of ``POST /v1/webhooks``."""

    model_config = ConfigDict(extra="forbid")

    url: WebhookUrl
    event_types: EventTypes = Field(default_factory=lambda: [ALL_EVENT_TYPES])
    description: Description = ""

    _url = field_validator("url")(_check_url)
    _event_types = field_validator("event_types")(_check_event_types)


class WebhookEndpointPatch(BaseModel):
    """Body of ``PATCH /v1/webhooks/{id}``: only the fields given change. `enabled: true`
    re-enables an endpoint that was disabled (and clears `disabled_reason`)."""

    model_config = ConfigDict(extra="forbid")

    url: WebhookUrl | None = None
    event_types: EventTypes | None = None
    description: Description | None = None
    enabled: bool | None = Field(
        default=None, description="false stops deliveries; true starts them again."
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value)

    @field_validator("event_types")
    @classmethod
    def _event_types(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _check_event_types(value)


class WebhookReplayRequest(BaseModel):
    """Body of ``POST /v1/webhooks/{id}/replay``: send timeline events again, either one
    task's after a seq (`task_id`, `after`) or every task's since a time (`since`)."""

    model_config = ConfigDict(extra="forbid")

    task_id: UUID | None = Field(
        default=None, description="One of your tasks (another tenant's or a missing one: 404)."
    )
    after: int = Field(default=0, ge=0, description="With `task_id`: events after this seq.")
    since: AwareDatetime | None = Field(
        default=None,
        description="Without `task_id`: events appended at or after this time (with a zone).",
    )

    @model_validator(mode="after")
    def _one_selection(self) -> WebhookReplayRequest:
        if (self.task_id is None) == (self.since is None):
            raise ValueError("give either task_id (with after) or since")
        if self.since is not None and self.after:
            raise ValueError("after goes with task_id, not with since")
        return self


class WebhookEndpoint(BaseModel):
    id: UUID
    url: str
    event_types: list[str] = Field(description='Event names delivered, or `["*"]` for all.')
    description: str
    enabled: bool
    disabled_reason: str | None = Field(
        description="Why deliveries stopped (`410 Gone`, days of failures); null while enabled."
    )
    created_at: datetime


class WebhookEndpointList(BaseModel):
    items: list[WebhookEndpoint]


class WebhookEndpointWithSecret(WebhookEndpoint):
    secret: str = Field(
        description="`whsec_…`: verifies the `webhook-signature` of deliveries. Shown only "
        "here: keep it."
    )


class WebhookSecret(BaseModel):
    secret: str = Field(description="The new `whsec_…` secret; shown only here.")
    previous_secret_expires_at: datetime = Field(
        description="Until then deliveries carry a signature with the old secret too."
    )


class WebhookDelivery(BaseModel):
    id: UUID
    event_id: UUID = Field(description="The `webhook-id` header: the same on every attempt.")
    type: str = Field(description="The event name, e.g. task.succeeded, or webhook.test.")
    task_id: UUID | None = Field(description="Null for `webhook.test`.")
    seq: int | None = Field(description="The event's seq in its task's timeline.")
    status: DeliveryStatus
    attempts: int = Field(description="Attempts made so far.")
    last_status_code: int | None = Field(description="Your endpoint's last HTTP status.")
    last_error: str | None = Field(description="Why the last attempt failed, if it did.")
    next_attempt_at: datetime | None = Field(description="When it is tried next (pending).")
    created_at: datetime


class WebhookDeliveryPage(BaseModel):
    items: list[WebhookDelivery] = Field(description="Newest first.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class WebhookReplayQueued(BaseModel):
    queued: int = Field(description="Deliveries queued (the events the endpoint's filter takes).")


class WebhookTestQueued(BaseModel):
    event_id: UUID = Field(description="The `webhook-id` of the test delivery.")


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
    limit: str | None = Field(
        default=None,
        description="For a 429: the limit the request went past (`requests` or `submits`).",
    )
