"""In-memory fakes for the notifier's ports (notifier.ports), bundled by ``Fakes``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID, uuid4

from notifier.models import (
    TEST_EVENT_TYPE,
    DeliveryStatus,
    TimelineEvent,
    WebhookEndpointUpdate,
)
from notifier.ports import ConnectionGone, EdgeCursor, Ports, UnsafeTarget
from notifier.service import TenantMismatch
from notifier.timeline import HeldEntry, TaskTimeline, TimelineEntry, TimelineHead
from notifier.webhook_records import (
    AttemptOutcome,
    AttemptResult,
    ClaimBounds,
    ClaimedDelivery,
    DeliveryPosition,
    DeliveryRecord,
    EndpointRecord,
)


@dataclass
class _Row:
    tenant_id: str
    last_seq: int = 0
    terminal_seq: int | None = None
    provided: set[str] = field(default_factory=set)
    events: list[TimelineEvent] = field(default_factory=list)
    held: dict[UUID, HeldEntry] = field(default_factory=dict)
    late: dict[UUID, TimelineEntry] = field(default_factory=dict)


@dataclass
class _Locked:
    row: _Row
    timeline: TaskTimeline
    recorded: bool = False
    deliveries_queued: int = 0


class InMemoryTimelineStore:
    def __init__(self, webhooks: InMemoryWebhookStore | None = None) -> None:
        self.webhooks = webhooks  # appends queue their deliveries there, as PostgreSQL does
        self.rows: dict[UUID, _Row] = {}
        self._locks: dict[UUID, asyncio.Lock] = {}
        self.unreadable = False  # reads fail, as while PostgreSQL is away

    @asynccontextmanager
    async def locked(
        self, task_id: UUID, tenant_id: str, *, event_id: UUID | None = None
    ) -> AsyncIterator[_Locked]:
        async with self._locks.setdefault(task_id, asyncio.Lock()):
            row = self.rows.setdefault(task_id, _Row(tenant_id))
            if row.tenant_id != tenant_id:
                raise TenantMismatch(str(task_id))
            recorded = event_id is not None and (
                any(e.event_id == event_id for e in row.events)
                or event_id in row.held
                or event_id in row.late
            )
            locked = _Locked(row, self._timeline(task_id, row), recorded=recorded)
            yield locked
            self._save(row, locked.timeline)
            locked.deliveries_queued = self._queue_deliveries(locked.timeline)

    def _queue_deliveries(self, timeline: TaskTimeline) -> int:
        if self.webhooks is None:
            return 0
        return sum(self.webhooks.queue(event) for event in timeline.changes.appended)

    @asynccontextmanager
    async def locked_if_free(self, task_id: UUID) -> AsyncIterator[_Locked | None]:
        lock = self._locks.setdefault(task_id, asyncio.Lock())
        if task_id not in self.rows or lock.locked():
            yield None
            return
        async with lock:
            row = self.rows[task_id]
            locked = _Locked(row, self._timeline(task_id, row))
            yield locked
            self._save(row, locked.timeline)
            locked.deliveries_queued = self._queue_deliveries(locked.timeline)

    async def tasks_holding_since(self, held_before: datetime, *, limit: int) -> list[UUID]:
        return [
            task_id
            for task_id, row in self.rows.items()
            if any(h.held_since <= held_before for h in row.held.values())
        ][:limit]

    async def head(self, task_id: UUID) -> TimelineHead | None:
        if self.unreadable:
            raise ConnectionError("database away")
        row = self.rows.get(task_id)
        return TimelineHead(row.tenant_id, row.terminal_seq) if row else None

    async def events_after(
        self, task_id: UUID, tenant_id: str, after_seq: int, *, limit: int
    ) -> list[TimelineEvent]:
        row = self.rows.get(task_id)
        if row is None:
            return []
        return [e for e in row.events if e.seq > after_seq and e.tenant_id == tenant_id][:limit]

    def timeline_types(self, task_id: UUID) -> list[str]:
        return [e.type for e in self.rows[task_id].events]

    @staticmethod
    def _timeline(task_id: UUID, row: _Row) -> TaskTimeline:
        return TaskTimeline(
            task_id,
            row.tenant_id,
            last_seq=row.last_seq,
            terminal_seq=row.terminal_seq,
            provided=row.provided,
            held=row.held.values(),
        )

    @staticmethod
    def _save(row: _Row, timeline: TaskTimeline) -> None:
        changes = timeline.changes
        row.events.extend(changes.appended)
        for event_id in changes.released:
            del row.held[event_id]
        row.held.update({h.entry.event_id: h for h in changes.newly_held})
        row.late.update({e.event_id: e for e in changes.late})
        row.last_seq, row.terminal_seq = timeline.last_seq, timeline.terminal_seq
        row.provided = set(timeline.provided)


class LocalSubscription:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[TimelineEvent | None] = asyncio.Queue()

    async def next(self, *, within: float) -> TimelineEvent | None:
        try:
            return await asyncio.wait_for(self.queue.get(), within)
        except TimeoutError:
            return None


class LocalFeed:
    """Publisher and feed in one process: what Redis does between replicas, minus the wire."""

    def __init__(self) -> None:
        self.published: list[TimelineEvent] = []
        # by channel: a task id, or a tenant id for the tenant-wide channel
        self.listeners: dict[UUID | str, list[LocalSubscription]] = {}
        self.broken = False

    async def publish(self, events: Sequence[TimelineEvent]) -> None:
        if self.broken:
            raise ConnectionError("redis is down")
        for event in events:
            self.published.append(event)
            for channel in (event.task_id, event.tenant_id):
                for subscription in self.listeners.get(channel, []):
                    subscription.queue.put_nowait(event)

    def listen(self, task_id: UUID) -> AbstractAsyncContextManager[LocalSubscription]:
        return self._listen(task_id)

    def listen_tenant(self, tenant_id: str) -> AbstractAsyncContextManager[LocalSubscription]:
        return self._listen(tenant_id)

    @asynccontextmanager
    async def _listen(self, channel: UUID | str) -> AsyncIterator[LocalSubscription]:
        subscription = LocalSubscription()
        self.listeners.setdefault(channel, []).append(subscription)
        try:
            yield subscription
        finally:
            self.listeners[channel].remove(subscription)


class ManualClock:
    """Stands still until a test advances it."""

    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class _Delivery:
    id: UUID
    endpoint_id: UUID
    tenant_id: str
    event_id: UUID
    type: str
    task_id: UUID | None
    seq: int | None
    body: str
    traceparent: str | None
    created_at: datetime
    next_attempt_at: datetime | None
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    last_status_code: int | None = None
    last_error: str | None = None
    last_attempt_at: datetime | None = None

    def record(self) -> DeliveryRecord:
        return DeliveryRecord(
            id=self.id,
            event_id=self.event_id,
            type=self.type,
            task_id=self.task_id,
            seq=self.seq,
            status=self.status,
            attempts=self.attempts,
            last_status_code=self.last_status_code,
            last_error=self.last_error,
            next_attempt_at=self.next_attempt_at,
            created_at=self.created_at,
        )


class InMemoryWebhookStore:
    """Endpoints and deliveries in dicts; due times against the shared ManualClock."""

    def __init__(self, clock: ManualClock, timelines: InMemoryTimelineStore | None = None) -> None:
        self._clock = clock
        self.timelines = timelines
        self.endpoints_by_id: dict[UUID, EndpointRecord] = {}
        self.rows: list[_Delivery] = []

    def queue(self, event: TimelineEvent) -> int:
        takers = [
            endpoint
            for endpoint in self.endpoints_by_id.values()
            if endpoint.tenant_id == event.tenant_id
            and endpoint.enabled
            and endpoint.takes(event.type)
        ]
        for endpoint in takers:
            self._add(endpoint, event, traceparent=event.traceparent)
        return len(takers)

    def _add(
        self, endpoint: EndpointRecord, event: TimelineEvent, *, traceparent: str | None = None
    ) -> None:
        self.rows.append(
            _Delivery(
                id=uuid4(),
                endpoint_id=endpoint.id,
                tenant_id=endpoint.tenant_id,
                event_id=event.event_id,
                type=event.type,
                task_id=event.task_id,
                seq=event.seq,
                body=event.client_json,
                traceparent=traceparent,
                created_at=self._clock() + timedelta(microseconds=len(self.rows)),
                next_attempt_at=self._clock(),
            )
        )

    async def add_endpoint(self, endpoint: EndpointRecord, *, max_per_tenant: int) -> bool:
        if len(await self.endpoints(endpoint.tenant_id)) >= max_per_tenant:
            return False
        self.endpoints_by_id[endpoint.id] = endpoint
        return True

    async def endpoints(self, tenant_id: str) -> list[EndpointRecord]:
        return [e for e in self.endpoints_by_id.values() if e.tenant_id == tenant_id]

    async def endpoint(self, tenant_id: str, endpoint_id: UUID) -> EndpointRecord | None:
        endpoint = self.endpoints_by_id.get(endpoint_id)
        return endpoint if endpoint is not None and endpoint.tenant_id == tenant_id else None

    async def update_endpoint(
        self, tenant_id: str, endpoint_id: UUID, changes: WebhookEndpointUpdate
    ) -> EndpointRecord | None:
        endpoint = await self.endpoint(tenant_id, endpoint_id)
        if endpoint is None:
            return None
        fields: dict[str, Any] = {}
        if changes.url is not None:
            fields["url"] = changes.url
        if changes.event_types is not None:
            fields["event_types"] = tuple(changes.event_types)
        if changes.description is not None:
            fields["description"] = changes.description
        if changes.enabled is True:
            fields |= {"enabled": True, "disabled_reason": None, "failing_since": None}
            for row in self.rows:
                if row.endpoint_id == endpoint_id and row.status is DeliveryStatus.PENDING:
                    row.next_attempt_at = min(row.next_attempt_at or self._clock(), self._clock())
        elif changes.enabled is False:
            fields |= {"enabled": False, "disabled_reason": "disabled by the tenant"}
        updated = replace(endpoint, **fields)
        self.endpoints_by_id[endpoint_id] = updated
        return updated

    async def delete_endpoint(self, tenant_id: str, endpoint_id: UUID) -> bool:
        if await self.endpoint(tenant_id, endpoint_id) is None:
            return False
        del self.endpoints_by_id[endpoint_id]
        self.rows = [r for r in self.rows if r.endpoint_id != endpoint_id]
        return True

    async def rotate_secret(
        self, tenant_id: str, endpoint_id: UUID, sealed_secret: str, previous_until: datetime
    ) -> bool:
        endpoint = await self.endpoint(tenant_id, endpoint_id)
        if endpoint is None:
            return False
        self.endpoints_by_id[endpoint_id] = replace(
            endpoint,
            sealed_secret=sealed_secret,
            sealed_previous_secret=endpoint.sealed_secret,
            previous_secret_expires_at=previous_until,
        )
        return True

    async def deliveries(
        self,
        tenant_id: str,
        endpoint_id: UUID,
        *,
        status: DeliveryStatus | None,
        after: DeliveryPosition | None,
        limit: int,
    ) -> list[DeliveryRecord]:
        rows = sorted(
            (
                r.record()
                for r in self.rows
                if r.tenant_id == tenant_id
                and r.endpoint_id == endpoint_id
                and (status is None or r.status is status)
            ),
            key=lambda r: (r.created_at, r.id),
            reverse=True,
        )
        if after is not None:
            rows = [r for r in rows if (r.created_at, r.id) < (after.created_at, after.id)]
        return rows[:limit]

    async def queue_replay_of_task(
        self, endpoint: EndpointRecord, task_id: UUID, after_seq: int, *, limit: int
    ) -> int | None:
        assert self.timelines is not None
        row = self.timelines.rows.get(task_id)
        if row is None or row.tenant_id != endpoint.tenant_id:
            return None
        events = [e for e in row.events if e.seq > after_seq and endpoint.takes(e.type)][:limit]
        for event in events:
            self._add(endpoint, event)
        return len(events)

    async def queue_replay_since(
        self, endpoint: EndpointRecord, since: datetime, *, limit: int
    ) -> int:
        raise NotImplementedError("the fake keeps no append times; integration tests cover it")

    async def queue_test(self, endpoint: EndpointRecord, event_id: UUID, body: str) -> None:
        self.rows.append(
            _Delivery(
                id=uuid4(),
                endpoint_id=endpoint.id,
                tenant_id=endpoint.tenant_id,
                event_id=event_id,
                type=TEST_EVENT_TYPE,
                task_id=None,
                seq=None,
                body=body,
                traceparent=None,
                created_at=self._clock(),
                next_attempt_at=self._clock(),
            )
        )

    def _due(self) -> list[_Delivery]:
        return sorted(
            (
                r
                for r in self.rows
                if r.status is DeliveryStatus.PENDING
                and r.next_attempt_at is not None
                and r.next_attempt_at <= self._clock()
                and self.endpoints_by_id[r.endpoint_id].enabled
            ),
            key=lambda r: (r.next_attempt_at or self._clock(), r.created_at),
        )

    async def claim_due(
        self, bounds: ClaimBounds, *, lease_seconds: float
    ) -> list[ClaimedDelivery]:
        claimed: list[ClaimedDelivery] = []
        endpoints = dict(bounds.endpoints_in_flight)
        tenants = dict(bounds.tenants_in_flight)
        for row in self._due():
            if len(claimed) >= bounds.limit:
                break
            if endpoints.get(row.endpoint_id, 0) >= bounds.per_endpoint:
                continue
            if tenants.get(row.tenant_id, 0) >= bounds.per_tenant:
                continue
            endpoints[row.endpoint_id] = endpoints.get(row.endpoint_id, 0) + 1
            tenants[row.tenant_id] = tenants.get(row.tenant_id, 0) + 1
            row.next_attempt_at = self._clock() + timedelta(seconds=lease_seconds)
            row.attempts += 1  # counted from the claim, as in PostgreSQL
            endpoint = self.endpoints_by_id[row.endpoint_id]
            claimed.append(
                ClaimedDelivery(
                    id=row.id,
                    endpoint_id=row.endpoint_id,
                    tenant_id=row.tenant_id,
                    url=endpoint.url,
                    event_id=row.event_id,
                    type=row.type,
                    task_id=row.task_id,
                    seq=row.seq,
                    body=row.body,
                    traceparent=row.traceparent,
                    attempts=row.attempts - 1,
                    sealed_secret=endpoint.sealed_secret,
                    sealed_previous_secret=endpoint.sealed_previous_secret,
                    previous_secret_expires_at=endpoint.previous_secret_expires_at,
                    failing_since=endpoint.failing_since,
                )
            )
        return claimed

    async def record_outcome(self, delivery: ClaimedDelivery, outcome: AttemptOutcome) -> None:
        row = next(r for r in self.rows if r.id == delivery.id)
        if row.status is not DeliveryStatus.PENDING:
            return
        row.status = outcome.status
        row.last_status_code = outcome.result.status_code
        row.last_error = outcome.result.error
        row.last_attempt_at = outcome.at
        row.next_attempt_at = outcome.next_attempt_at
        endpoint = self.endpoints_by_id.get(delivery.endpoint_id)
        if endpoint is None:
            return
        if outcome.result.succeeded:
            endpoint = replace(endpoint, failing_since=None)
        elif outcome.disable_reason is not None:
            endpoint = replace(endpoint, enabled=False, disabled_reason=outcome.disable_reason)
        elif endpoint.failing_since is None:
            endpoint = replace(endpoint, failing_since=outcome.at)
        self.endpoints_by_id[endpoint.id] = endpoint

    async def backlog(self) -> int:
        return len(self._due())

    async def purge_finished(self, before: datetime) -> int:
        kept = [
            r
            for r in self.rows
            if r.status is DeliveryStatus.PENDING
            or r.last_attempt_at is None
            or r.last_attempt_at >= before
        ]
        purged, self.rows = len(self.rows) - len(kept), kept
        return purged


@dataclass
class SentRequest:
    url: str
    headers: dict[str, str]
    body: bytes


class ScriptedSender:
    """Answers attempts from a script per URL (a status code, or None for no answer) and keeps
    what was sent; refuses the hosts in ``unsafe_hosts`` as the SSRF guard would."""

    def __init__(self) -> None:
        self.sent: list[SentRequest] = []
        self.answers: dict[str, list[int | None]] = {}
        self.unsafe_hosts: set[str] = {"169.254.169.254", "localhost", "10.0.0.1"}

    def answer(self, url: str, *statuses: int | None) -> None:
        self.answers.setdefault(url, []).extend(statuses)

    async def check(self, url: str) -> None:
        host = urlsplit(url).hostname or ""
        if host in self.unsafe_hosts:
            raise UnsafeTarget(f"{host} resolves to a private address")

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> AttemptResult:
        self.sent.append(SentRequest(url, dict(headers), body))
        script = self.answers.get(url)
        status = script.pop(0) if script else 200
        if status is None:
            return AttemptResult(None, "no answer within 10s", 10.0)
        return AttemptResult(status, None, 0.01)


@dataclass
class _CursorRow:
    cursor: EdgeCursor
    owner: str = "-"
    lease_until: datetime | None = None
    done: bool = False  # the terminal event went out


class InMemoryEdgeConnections:
    """The WebSocket API's table in memory, with the conditions DynamoDB checks (the adapter's
    own test, tests/integration/test_edge_table.py, holds the real table to the same rules)."""

    def __init__(self, clock: ManualClock) -> None:
        self._clock = clock
        self.tenants: dict[str, str] = {}
        self.all_tasks: dict[str, str] = {}  # connection -> tenant
        self.cursors: dict[tuple[str, UUID], _CursorRow] = {}

    async def add_connection(
        self, connection_id: str, tenant_id: str, *, expires_at: datetime
    ) -> None:
        self.tenants[connection_id] = tenant_id

    async def tenant_of(self, connection_id: str) -> str | None:
        return self.tenants.get(connection_id)

    async def remove_connection(self, connection_id: str) -> None:
        self.tenants.pop(connection_id, None)
        self.all_tasks.pop(connection_id, None)
        for key in [k for k in self.cursors if k[0] == connection_id]:
            del self.cursors[key]

    async def subscriptions(self, connection_id: str) -> int:
        mine = [r for k, r in self.cursors.items() if k[0] == connection_id]
        return sum(r.cursor.explicit for r in mine) + (connection_id in self.all_tasks)

    async def add_all_tasks(self, connection_id: str, tenant_id: str, expires_at: datetime) -> bool:
        if connection_id in self.all_tasks:
            return False
        self.all_tasks[connection_id] = tenant_id
        return True

    async def remove_all_tasks(self, connection_id: str) -> None:
        self.all_tasks.pop(connection_id, None)
        for key, row in list(self.cursors.items()):
            if key[0] == connection_id and not row.cursor.explicit:
                del self.cursors[key]

    async def following_all(self, tenant_id: str) -> list[str]:
        return [c for c, t in self.all_tasks.items() if t == tenant_id]

    async def add_cursor(
        self,
        cursor: EdgeCursor,
        *,
        expires_at: datetime,
        owner: str | None = None,
        lease_until: datetime | None = None,
    ) -> bool:
        key = (cursor.connection_id, cursor.task_id)
        existing = self.cursors.get(key)
        if existing is not None and (existing.cursor.explicit or not cursor.explicit):
            return False  # a finished one is not explicit: only an explicit one replaces it
        self.cursors[key] = _CursorRow(cursor, owner or "-", lease_until)
        return True

    async def remove_cursor(
        self, connection_id: str, task_id: UUID, *, owner: str | None = None
    ) -> None:
        row = self.cursors.get((connection_id, task_id))
        if row is not None and (owner is None or row.owner == owner):
            del self.cursors[(connection_id, task_id)]

    async def cursors_of_task(self, task_id: UUID) -> list[EdgeCursor]:
        return [r.cursor for k, r in self.cursors.items() if k[1] == task_id and not r.done]

    async def all_cursors(self) -> list[EdgeCursor]:
        return [r.cursor for r in self.cursors.values() if not r.done]

    def live_cursors(self) -> dict[tuple[str, UUID], _CursorRow]:
        return {k: r for k, r in self.cursors.items() if not r.done}

    async def claim(
        self, cursor: EdgeCursor, *, owner: str, lease_until: datetime
    ) -> EdgeCursor | None:
        row = self.cursors.get((cursor.connection_id, cursor.task_id))
        if row is None or row.done:
            return None
        if row.lease_until is not None and row.lease_until >= self._clock():
            return None
        row.owner, row.lease_until = owner, lease_until
        return row.cursor

    async def advance(self, cursor: EdgeCursor, *, owner: str, lease_until: datetime) -> bool:
        row = self.cursors.get((cursor.connection_id, cursor.task_id))
        if row is None or row.owner != owner:
            return False
        row.cursor, row.lease_until = row.cursor.at(cursor.after), lease_until
        return True

    async def finish(self, cursor: EdgeCursor, *, owner: str) -> None:
        row = self.cursors.get((cursor.connection_id, cursor.task_id))
        if row is not None and row.owner == owner:
            done = EdgeCursor(cursor.connection_id, cursor.tenant_id, cursor.task_id, cursor.after)
            self.cursors[(cursor.connection_id, cursor.task_id)] = _CursorRow(
                done, "-", None, done=True
            )

    async def release(self, cursor: EdgeCursor, *, owner: str) -> bool:
        row = self.cursors.get((cursor.connection_id, cursor.task_id))
        if row is None or row.owner != owner:
            return False
        row.owner, row.lease_until = "-", None
        return True


class RecordingPoster:
    """PostToConnection that keeps every frame per connection; ``gone`` ones raise, as API
    Gateway answers 410 for a connection that has closed. ``pause`` holds every post."""

    def __init__(self) -> None:
        self.frames: dict[str, list[dict[str, Any]]] = {}
        self.gone: set[str] = set()
        self.pause = asyncio.Event()
        self.pause.set()

    async def post(self, connection_id: str, frame: str) -> None:
        await self.pause.wait()
        if connection_id in self.gone:
            raise ConnectionGone(connection_id)
        self.frames.setdefault(connection_id, []).append(json.loads(frame))


@dataclass
class Fakes:
    """One of each fake; ``ports()`` is the notifier's whole outside world, in memory."""

    store: InMemoryTimelineStore = field(default_factory=InMemoryTimelineStore)
    feed: LocalFeed = field(default_factory=LocalFeed)  # the live publisher and the live feed
    clock: ManualClock = field(default_factory=ManualClock)
    sender: ScriptedSender = field(default_factory=ScriptedSender)
    webhooks: InMemoryWebhookStore = field(init=False)
    edge: InMemoryEdgeConnections = field(init=False)
    poster: RecordingPoster = field(default_factory=RecordingPoster)

    def __post_init__(self) -> None:
        self.webhooks = InMemoryWebhookStore(self.clock, self.store)
        self.store.webhooks = self.webhooks
        self.edge = InMemoryEdgeConnections(self.clock)

    def ports(self, *, edge: bool = False) -> Ports:
        """``edge``: with the WebSocket API's table and PostToConnection (the API Gateway
        edge)."""
        return Ports(
            store=self.store,
            live=self.feed,
            feed=self.feed,
            webhooks=self.webhooks,
            sender=self.sender,
            clock=self.clock,
            edge_connections=self.edge if edge else None,
            edge_poster=self.poster if edge else None,
        )
