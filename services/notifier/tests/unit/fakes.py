"""In-memory fakes for the notifier's ports (notifier.ports), bundled by ``Fakes``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

from notifier.models import TimelineEvent
from notifier.ports import Ports
from notifier.service import TenantMismatch
from notifier.timeline import HeldEntry, TaskTimeline, TimelineEntry, TimelineHead


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

    async def has_recorded(self, event_id: UUID) -> bool:
        return (
            any(e.event_id == event_id for e in self.row.events)
            or event_id in self.row.held
            or event_id in self.row.late
        )


class InMemoryTimelineStore:
    def __init__(self) -> None:
        self.rows: dict[UUID, _Row] = {}
        self._locks: dict[UUID, asyncio.Lock] = {}
        self.unreadable = False  # reads fail, as while PostgreSQL is away

    @asynccontextmanager
    async def locked(self, task_id: UUID, tenant_id: str) -> AsyncIterator[_Locked]:
        async with self._locks.setdefault(task_id, asyncio.Lock()):
            row = self.rows.setdefault(task_id, _Row(tenant_id))
            if row.tenant_id != tenant_id:
                raise TenantMismatch(str(task_id))
            locked = _Locked(row, self._timeline(task_id, row))
            yield locked
            self._save(row, locked.timeline)

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
class Fakes:
    """One of each fake; ``ports()`` is the notifier's whole outside world, in memory."""

    store: InMemoryTimelineStore = field(default_factory=InMemoryTimelineStore)
    feed: LocalFeed = field(default_factory=LocalFeed)  # the live publisher and the live feed
    clock: ManualClock = field(default_factory=ManualClock)

    def ports(self) -> Ports:
        return Ports(store=self.store, live=self.feed, feed=self.feed, clock=self.clock)
