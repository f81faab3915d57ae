"""The timeline event as clients see it (SSE ``data:``) and as replicas share it (Redis); the
webhook endpoints, deliveries and requests of the webhook API."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator
from sse_starlette import ServerSentEvent

from relay_shared.events import (
    TERMINAL_EVENTS,
    ArtifactPublished,
    TaskCancelled,
    TaskCancelRequested,
    TaskFailed,
    TaskInputProvided,
    TaskInputRequested,
    TaskProgressed,
    TaskStarted,
    TaskSubmitted,
    TaskSucceeded,
)


class TimelineEvent(BaseModel):
    """One appended event: ``{"type","seq","task_id","occurred_at","data","event_id"}``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    type: str = Field(description="The event name, e.g. 'task.progressed'.")
    seq: int = Field(ge=1, description="1..n within the task's timeline, no gaps.")
    task_id: UUID
    occurred_at: AwareDatetime
    data: dict[str, Any]
    event_id: UUID
    # Never part of the client JSON; carried so every reader can check the tenant.
    tenant_id: str = Field(exclude=True)
    # Never part of the client JSON either: the event's trace, for the webhook deliveries the
    # append queues (only known on the append itself, not when read back).
    traceparent: str | None = Field(default=None, exclude=True)

    @field_validator("occurred_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL_EVENTS

    # Computed once per event, however many followers are sent it (a live event is one object
    # shared by every local subscription). The model is frozen, so neither can go stale.
    @cached_property
    def client_json(self) -> str:
        return self.model_dump_json()

    @cached_property
    def sse_frame(self) -> bytes:
        """The event as one SSE frame: ``id:`` = seq, ``event:`` = name, ``data:`` = JSON."""
        return ServerSentEvent(id=str(self.seq), event=self.type, data=self.client_json).encode()

    def live_message(self) -> str:
        """What goes on the Redis channel: the client JSON plus the owning tenant."""
        return json.dumps({**self.model_dump(mode="json"), "tenant_id": self.tenant_id})

    @classmethod
    def from_live_message(cls, text: str | bytes) -> TimelineEvent:
        return cls.model_validate_json(text)


# --- Webhooks (DESIGN.md, *Webhooks*) ---

# What a timeline carries, so what an endpoint may ask for (handlers.py consumes exactly these;
# a unit test keeps the two in step).
WEBHOOK_EVENT_TYPES: tuple[str, ...] = (
    TaskSubmitted.name,
    TaskCancelRequested.name,
    TaskStarted.name,
    TaskProgressed.name,
    TaskInputRequested.name,
    TaskInputProvided.name,
    TaskSucceeded.name,
    TaskFailed.name,
    TaskCancelled.name,
    ArtifactPublished.name,
)
ALL_EVENT_TYPES = "*"
TEST_EVENT_TYPE = "webhook.test"
MAX_URL_LENGTH = 2048
MAX_DESCRIPTION_LENGTH = 500

EventTypes = Annotated[
    list[str],
    Field(
        min_length=1,
        max_length=len(WEBHOOK_EVENT_TYPES),
        description='Event names to deliver (`task.succeeded`, ...), or `["*"]` for all.',
        examples=[["task.succeeded", "task.failed"]],
    ),
]
WebhookUrl = Annotated[
    str,
    Field(
        max_length=MAX_URL_LENGTH,
        description="Where deliveries are POSTed: an `https://` (or `http://`) URL that "
        "resolves to a public address. No credentials in it: verify the signature instead.",
        examples=["https://example.com/relay-webhooks"],
    ),
]
Description = Annotated[str, Field(max_length=MAX_DESCRIPTION_LENGTH)]


def check_webhook_url(value: str) -> str:
    """The URL's shape (scheme, host, no credentials or fragment); where it resolves to is the
    SSRF guard's to judge (sender.py)."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise ValueError("the scheme must be https or http")
    if not parts.hostname:
        raise ValueError("the URL must name a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("credentials do not belong in the URL; verify the signature instead")
    if parts.fragment:
        raise ValueError("a fragment is never sent; leave it out")
    if port == 0:
        raise ValueError("port 0 is not a port")
    if any(c.isspace() or ord(c) < 0x20 for c in value):
        raise ValueError("the URL may not contain spaces or control characters")
    return value


def check_event_types(value: list[str]) -> list[str]:
    if ALL_EVENT_TYPES in value:
        if value != [ALL_EVENT_TYPES]:
            raise ValueError('"*" stands alone: it already means every event type')
        return value
    unknown = sorted(set(value) - set(WEBHOOK_EVENT_TYPES))
    if unknown:
        raise ValueError(
            f"unknown event type(s) {', '.join(unknown)}; known: {', '.join(WEBHOOK_EVENT_TYPES)}"
        )
    return list(dict.fromkeys(value))  # in the given order, each once


class WebhookEndpointRequest(BaseModel):
    """``POST /v1/webhooks``."""

    model_config = ConfigDict(extra="forbid")

    url: WebhookUrl
    event_types: EventTypes = Field(default_factory=lambda: [ALL_EVENT_TYPES])
    description: Description = ""

    _url = field_validator("url")(check_webhook_url)
    _types = field_validator("event_types")(check_event_types)


class WebhookEndpointUpdate(BaseModel):
    """``PATCH /v1/webhooks/{id}``: the fields given change; ``enabled: true`` re-enables a
    disabled endpoint (and clears its reason)."""

    model_config = ConfigDict(extra="forbid")

    url: WebhookUrl | None = None
    event_types: EventTypes | None = None
    description: Description | None = None
    enabled: bool | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_webhook_url(value)

    @field_validator("event_types")
    @classmethod
    def _types(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_event_types(value)


class WebhookEndpointView(BaseModel):
    id: UUID
    url: str
    event_types: list[str]
    description: str
    enabled: bool
    disabled_reason: str | None = Field(
        description="Why deliveries stopped (`410 Gone`, days of failures); null while enabled."
    )
    created_at: AwareDatetime


class WebhookEndpointList(BaseModel):
    items: list[WebhookEndpointView]


class NewWebhookEndpointView(WebhookEndpointView):
    secret: str = Field(description="`whsec_…`: verifies signatures; shown only here.")


class WebhookSecretView(BaseModel):
    secret: str = Field(description="The new `whsec_…` secret; shown only here.")
    previous_secret_expires_at: AwareDatetime = Field(
        description="Until then deliveries carry a signature with the old secret too."
    )


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WebhookDeliveryView(BaseModel):
    id: UUID
    event_id: UUID = Field(description="The `webhook-id` header: the same on every attempt.")
    type: str
    task_id: UUID | None = Field(description="Null for `webhook.test`.")
    seq: int | None = Field(description="The event's seq in its task's timeline.")
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None = Field(description="The receiver's last HTTP status.")
    last_error: str | None = Field(description="Why the last attempt failed, if it did.")
    next_attempt_at: AwareDatetime | None = Field(description="When it is tried next (pending).")
    created_at: AwareDatetime


class WebhookDeliveryPage(BaseModel):
    items: list[WebhookDeliveryView]
    next_cursor: str | None


class ReplayRequest(BaseModel):
    """Send timeline events again: one task's after a seq, or every task's since a time."""

    model_config = ConfigDict(extra="forbid")

    task_id: UUID | None = None
    after: int = Field(default=0, ge=0, description="With `task_id`: events after this seq.")
    since: AwareDatetime | None = Field(
        default=None, description="Without `task_id`: events appended at or after this time."
    )

    @model_validator(mode="after")
    def _one_selection(self) -> ReplayRequest:
        if (self.task_id is None) == (self.since is None):
            raise ValueError("give either task_id (with after) or since")
        if self.since is not None and self.after:
            raise ValueError("after goes with task_id, not with since")
        return self


class ReplayQueued(BaseModel):
    queued: int = Field(description="Deliveries queued (events the endpoint's filter takes).")


class TestQueued(BaseModel):
    event_id: UUID = Field(description="The `webhook-id` of the test delivery.")
