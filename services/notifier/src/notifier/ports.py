"""What the notifier needs from outside the process: the timeline store (PostgreSQL), the live
publisher and feed (Redis pub/sub between replicas), the webhook store and the HTTP sender that
delivers webhooks (with its guard against unsafe targets), a clock, and, on the API Gateway
edge only, the WebSocket API's connection table (DynamoDB) and its PostToConnection. The
composition root fills them with the production adapters, unit tests with the fakes in
tests/unit/fakes.py."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol
from uuid import UUID

from notifier.models import DeliveryStatus, TimelineEvent, WebhookEndpointUpdate
from notifier.timeline import TaskTimeline, TimelineHead
from notifier.webhook_records import (
    AttemptOutcome,
    AttemptResult,
    ClaimBounds,
    ClaimedDelivery,
    DeliveryPosition,
    DeliveryRecord,
    EndpointRecord,
)
from relay_shared.composition import Loops, no_loops


class LockedTimeline(Protocol):
    """A timeline loaded under its row lock; its changes are saved when the block ends cleanly."""

    timeline: TaskTimeline
    # the event named to TimelineStore.locked is appended, held or recorded late already: a repeat
    recorded: bool
    # set when the block has ended: webhook deliveries the save queued (see TimelineStore.locked)
    deliveries_queued: int


class TimelineReader(Protocol):
    """What a stream reads: the timeline's owner and end, and its events in seq order."""

    async def head(self, task_id: UUID) -> TimelineHead | None: ...

    async def events_after(
        self, task_id: UUID, tenant_id: str, after_seq: int, *, limit: int
    ) -> list[TimelineEvent]: ...


class TimelineStore(TimelineReader, Protocol):
    def locked(
        self, task_id: UUID, tenant_id: str, *, event_id: UUID | None = None
    ) -> AbstractAsyncContextManager[LockedTimeline]:
        """Lock (creating if needed) the task's timeline; raises TenantMismatch. ``recorded``
        tells whether ``event_id`` is on it already, read under the lock. Saving what was
        appended also queues its webhook deliveries (one per enabled endpoint of the tenant
        whose filter takes the event), in the same transaction."""
        ...

    def locked_if_free(self, task_id: UUID) -> AbstractAsyncContextManager[LockedTimeline | None]:
        """Lock an existing timeline unless another writer holds it (then yield None)."""
        ...

    async def tasks_holding_since(self, held_before: datetime, *, limit: int) -> list[UUID]: ...


class LivePublisher(Protocol):
    """Tells every replica's streams about events just appended (after commit)."""

    async def publish(self, events: Sequence[TimelineEvent]) -> None: ...


class LiveEvents(Protocol):
    """One listener's subscription to a task's live events."""

    async def next(self, *, within: float) -> TimelineEvent | None:
        """The next live event; ``None`` when the reader should re-read the timeline instead."""
        ...


class LiveFeed(Protocol):
    """The process's subscriptions to live events, shared by its streams."""

    def listen(self, task_id: UUID) -> AbstractAsyncContextManager[LiveEvents]:
        """Live events of one task."""
        ...

    def listen_tenant(self, tenant_id: str) -> AbstractAsyncContextManager[LiveEvents]:
        """Live events of every task of a tenant."""
        ...


class WebhookStore(Protocol):
    """Webhook endpoints and their deliveries (every query names the tenant, except the
    worker's, which works for all of them)."""

    async def add_endpoint(self, endpoint: EndpointRecord, *, max_per_tenant: int) -> bool:
        """False when the tenant already has ``max_per_tenant`` endpoints."""
        ...

    async def endpoints(self, tenant_id: str) -> list[EndpointRecord]: ...

    async def endpoint(self, tenant_id: str, endpoint_id: UUID) -> EndpointRecord | None: ...

    async def update_endpoint(
        self, tenant_id: str, endpoint_id: UUID, changes: WebhookEndpointUpdate
    ) -> EndpointRecord | None:
        """Apply the given fields; ``enabled: true`` also clears the reason and the failures."""
        ...

    async def delete_endpoint(self, tenant_id: str, endpoint_id: UUID) -> bool: ...

    async def rotate_secret(
        self, tenant_id: str, endpoint_id: UUID, sealed_secret: str, previous_until: datetime
    ) -> bool:
        """The current secret becomes the previous one (until ``previous_until``)."""
        ...

    async def deliveries(
        self,
        tenant_id: str,
        endpoint_id: UUID,
        *,
        status: DeliveryStatus | None,
        after: DeliveryPosition | None,
        limit: int,
    ) -> list[DeliveryRecord]:
        """Newest first, after ``after`` (the last row of the previous page)."""
        ...

    async def queue_replay_of_task(
        self, endpoint: EndpointRecord, task_id: UUID, after_seq: int, *, limit: int
    ) -> int | None:
        """Queue the task's events after ``after_seq`` that the endpoint takes; None when the
        task is not the endpoint's tenant's."""
        ...

    async def queue_replay_since(
        self, endpoint: EndpointRecord, since: datetime, *, limit: int
    ) -> int:
        """Queue the tenant's events appended at or after ``since`` that the endpoint takes."""
        ...

    async def queue_test(self, endpoint: EndpointRecord, event_id: UUID, body: str) -> None: ...

    async def claim_due(
        self, bounds: ClaimBounds, *, lease_seconds: float
    ) -> list[ClaimedDelivery]:
        """Due pending deliveries of enabled endpoints, oldest first within ``bounds``, each
        moved ``lease_seconds`` ahead while tried and its attempt counted (a crash
        mid-attempt still counts it)."""
        ...

    async def record_outcome(self, delivery: ClaimedDelivery, outcome: AttemptOutcome) -> None:
        """Save an attempt's result and what it decides for the delivery and its endpoint."""
        ...

    async def backlog(self) -> int:
        """Pending deliveries due now, of enabled endpoints."""
        ...

    async def purge_finished(self, before: datetime) -> int: ...


class UnsafeTarget(Exception):
    """A webhook URL that must not be called: a refused scheme, or a host that resolves to a
    loopback, private, link-local or metadata address (the message says which)."""


class WebhookSender(Protocol):
    async def check(self, url: str) -> None:
        """Raise UnsafeTarget unless ``url`` may be called (resolving its host)."""
        ...

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> AttemptResult:
        """One attempt: never raises for what the receiver or the network does."""
        ...


@dataclass(frozen=True)
class EdgeCursor:
    """One task followed by one WebSocket API connection: the last seq sent (``after``).
    ``explicit``: the client subscribed to the task (it gets history and ``end``), rather than
    to ``*`` (live events only)."""

    connection_id: str
    tenant_id: str
    task_id: UUID
    after: int
    explicit: bool = False

    def at(self, seq: int) -> EdgeCursor:
        return replace(self, after=seq)


class EdgeConnections(Protocol):
    """Connections, ``*`` subscriptions and cursors of the WebSocket API (edge.py). Every
    item of a connection expires with it (``expires_at``), whatever else happens."""

    async def add_connection(
        self, connection_id: str, tenant_id: str, *, expires_at: datetime
    ) -> None: ...

    async def tenant_of(self, connection_id: str) -> str | None: ...

    async def remove_connection(self, connection_id: str) -> None:
        """The connection and all its subscriptions and cursors."""
        ...

    async def subscriptions(self, connection_id: str) -> int:
        """How many tasks (and ``*``) the client subscribed to."""
        ...

    async def add_all_tasks(self, connection_id: str, tenant_id: str, expires_at: datetime) -> bool:
        """Subscribe the connection to ``*``; False if it already is."""
        ...

    async def remove_all_tasks(self, connection_id: str) -> None:
        """Unsubscribe ``*``, with the cursors it made."""
        ...

    async def following_all(self, tenant_id: str) -> list[str]:
        """Connections subscribed to ``*`` of this tenant."""
        ...

    async def add_cursor(
        self,
        cursor: EdgeCursor,
        *,
        expires_at: datetime,
        owner: str | None = None,
        lease_until: datetime | None = None,
    ) -> bool:
        """A new cursor (with its lease held by ``owner`` when given). An explicit cursor
        replaces one that ``*`` made; False if the task already has one of the same kind or
        an explicit one."""
        ...

    async def remove_cursor(
        self, connection_id: str, task_id: UUID, *, owner: str | None = None
    ) -> None:
        """Remove it (only while ``owner`` holds its lease, when given)."""
        ...

    async def finish(self, cursor: EdgeCursor, *, owner: str) -> None:
        """The task's terminal event went out (while ``owner`` holds the lease): the cursor
        stays as a marker that no sender, resync or index finds, so an append's late fan-out
        cannot make a new ``*`` cursor and send the task again. An explicit subscribe may
        replace it (a client asking for the history again)."""
        ...

    async def cursors_of_task(self, task_id: UUID) -> list[EdgeCursor]: ...

    async def all_cursors(self) -> list[EdgeCursor]: ...

    async def claim(
        self, cursor: EdgeCursor, *, owner: str, lease_until: datetime
    ) -> EdgeCursor | None:
        """Take the cursor's lease for ``owner`` (one sender's token) if it is free; the cursor
        as stored, or None."""
        ...

    async def advance(self, cursor: EdgeCursor, *, owner: str, lease_until: datetime) -> bool:
        """Store ``cursor.after`` and extend the lease, while ``owner`` holds it."""
        ...

    async def release(self, cursor: EdgeCursor, *, owner: str) -> bool:
        """Free the lease, while ``owner`` holds it."""
        ...


class ConnectionGone(Exception):
    """API Gateway no longer has the connection (the client left, or it timed out)."""


class ConnectionPoster(Protocol):
    async def post(self, connection_id: str, frame: str) -> None:
        """Send one text frame; raises ConnectionGone."""
        ...


class Clock(Protocol):
    def __call__(self) -> datetime:
        """Now, timezone-aware."""
        ...


@dataclass(frozen=True)
class Ports:
    """What the notifier service needs from outside the process."""

    store: TimelineStore
    live: LivePublisher
    feed: LiveFeed
    webhooks: WebhookStore
    sender: WebhookSender
    clock: Clock
    # the WebSocket API's table and PostToConnection, on the API Gateway edge only
    edge_connections: EdgeConnections | None = None
    edge_poster: ConnectionPoster | None = None
    # what runs beside the HTTP server in production, given the built service: the live feed,
    # the hold sweeper, the webhook delivery worker and its housekeeping, and the SQS consumer
    loops: Loops = no_loops
