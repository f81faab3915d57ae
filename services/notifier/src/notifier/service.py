"""The notifier's use cases: record an event on its task's timeline, release overdue events.

No SQL and no Redis here: the store and the live publisher are ports (Protocols) that the
composition root fills with PostgreSQL and Redis, and unit tests with in-memory fakes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Protocol
from uuid import UUID

from notifier.models import TimelineEvent
from notifier.timeline import TaskTimeline, TimelineEntry
from relay_shared.events import DomainEvent

log = logging.getLogger(__name__)


class TenantMismatch(ValueError):
    """An event names a task whose timeline belongs to another tenant."""


class LockedTimeline(Protocol):
    """A timeline loaded under its row lock; its changes are saved when the block ends cleanly."""

    timeline: TaskTimeline

    async def has_recorded(self, event_id: UUID) -> bool:
        """Appended, held or recorded late already: the event is a repeat."""
        ...


class TimelineStore(Protocol):
    def locked(self, task_id: UUID, tenant_id: str) -> AbstractAsyncContextManager[LockedTimeline]:
        """Lock (creating if needed) the task's timeline; raises TenantMismatch."""
        ...

    def locked_if_free(self, task_id: UUID) -> AbstractAsyncContextManager[LockedTimeline | None]:
        """Lock an existing timeline unless another writer holds it (then yield None)."""
        ...

    async def tasks_holding_since(self, held_before: datetime, *, limit: int) -> list[UUID]: ...


class LivePublisher(Protocol):
    async def publish(self, events: Sequence[TimelineEvent]) -> None: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


class TimelineService:
    def __init__(
        self,
        store: TimelineStore,
        live: LivePublisher,
        *,
        hold_seconds: float,
        clock: Callable[[], datetime] = utc_now,
        sweep_batch: int = 100,
    ) -> None:
        self._store = store
        self._live = live
        self._hold = timedelta(seconds=hold_seconds)
        self._clock = clock
        self._sweep_batch = sweep_batch

    async def record(self, event: DomainEvent) -> list[TimelineEvent]:
        """Put ``event`` on its task's timeline; returns what got appended (maybe nothing).

        A repeat (already appended, held or late) changes nothing, so redelivery is safe.
        """
        entry = TimelineEntry.from_event(event)
        async with self._store.locked(entry.task_id, entry.tenant_id) as locked:
            if locked.timeline.holds(entry.event_id) or await locked.has_recorded(entry.event_id):
                return []
            locked.timeline.offer(entry, now=self._clock())
            appended = locked.timeline.changes.appended
        await self._fan_out(appended)
        return appended

    async def release_overdue(self) -> list[TimelineEvent]:
        """Release events held longer than the hold limit, task by task; returns the appended."""
        held_before = self._clock() - self._hold
        released: list[TimelineEvent] = []
        for task_id in await self._store.tasks_holding_since(held_before, limit=self._sweep_batch):
            async with self._store.locked_if_free(task_id) as locked:
                if locked is None:
                    continue  # a consumer holds it now; the next sweep looks again
                locked.timeline.release_overdue(held_before=held_before)
                appended = locked.timeline.changes.appended
            if appended:
                log.info(
                    "released %d held event(s) of task %s after %.0fs",
                    len(appended),
                    task_id,
                    self._hold.total_seconds(),
                )
            await self._fan_out(appended)
            released.extend(appended)
        return released

    async def _fan_out(self, appended: Sequence[TimelineEvent]) -> None:
        """Publish after commit. A failure is logged, not raised: the events are durable, a
        redelivery would be a no-op repeat, and streams re-read the timeline periodically."""
        if not appended:
            return
        try:
            await self._live.publish(appended)
        except Exception as exc:
            log.warning(
                "live publish of %d event(s) for task %s failed: %s",
                len(appended),
                appended[0].task_id,
                exc,
            )
