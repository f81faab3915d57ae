"""What the webhook store keeps and hands back: endpoints, deliveries, a claimed delivery and
the outcome of one attempt. Plain values, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from notifier.models import (
    ALL_EVENT_TYPES,
    DeliveryStatus,
    WebhookDeliveryView,
    WebhookEndpointView,
)


@dataclass(frozen=True)
class EndpointRecord:
    id: UUID
    tenant_id: str
    url: str
    event_types: tuple[str, ...]
    description: str
    created_at: datetime
    sealed_secret: str  # encrypted (signing.SecretBox)
    enabled: bool = True
    disabled_reason: str | None = None
    sealed_previous_secret: str | None = None
    previous_secret_expires_at: datetime | None = None
    failing_since: datetime | None = None

    def takes(self, event_type: str) -> bool:
        return ALL_EVENT_TYPES in self.event_types or event_type in self.event_types

    def view(self) -> WebhookEndpointView:
        return WebhookEndpointView(
            id=self.id,
            url=self.url,
            event_types=list(self.event_types),
            description=self.description,
            enabled=self.enabled,
            disabled_reason=self.disabled_reason,
            created_at=self.created_at,
        )


@dataclass(frozen=True)
class DeliveryPosition:
    """Where a page of the delivery log ends (newest first: created_at, then id)."""

    created_at: datetime
    id: UUID


@dataclass(frozen=True)
class DeliveryRecord:
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

    @property
    def position(self) -> DeliveryPosition:
        return DeliveryPosition(self.created_at, self.id)

    def view(self) -> WebhookDeliveryView:
        return WebhookDeliveryView(
            id=self.id,
            event_id=self.event_id,
            type=self.type,
            task_id=self.task_id,
            seq=self.seq,
            status=self.status,
            attempts=self.attempts,
            last_status_code=self.last_status_code,
            last_error=self.last_error,
            next_attempt_at=self.next_attempt_at if self.status is DeliveryStatus.PENDING else None,
            created_at=self.created_at,
        )


@dataclass(frozen=True)
class ClaimBounds:
    """How much a worker may claim now: ``limit`` in all, and per endpoint and per tenant no
    more than their bound minus what it already has in flight for them."""

    limit: int
    per_endpoint: int
    per_tenant: int
    endpoints_in_flight: Mapping[UUID, int] = field(default_factory=dict)
    tenants_in_flight: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ClaimedDelivery:
    """A due delivery a worker has claimed, with what it needs to send it."""

    id: UUID
    endpoint_id: UUID
    tenant_id: str
    url: str
    event_id: UUID
    type: str
    task_id: UUID | None
    seq: int | None
    body: str
    traceparent: str | None
    attempts: int  # made before this one
    sealed_secret: str
    sealed_previous_secret: str | None
    previous_secret_expires_at: datetime | None
    failing_since: datetime | None


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt got: a status code, or why there was none."""

    status_code: int | None
    error: str | None
    duration_seconds: float

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        return self.status_code == 410


@dataclass(frozen=True)
class AttemptOutcome:
    """An attempt's result and what follows from it (delivery.decide)."""

    at: datetime
    result: AttemptResult
    status: DeliveryStatus
    next_attempt_at: datetime | None  # pending: the retry's due time
    disable_reason: str | None  # set: the endpoint is disabled with this reason
