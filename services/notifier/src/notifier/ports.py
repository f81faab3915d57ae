"""What the notifier needs from outside the process: the timeline store (PostgreSQL), the live
publisher and feed (Redis pub/sub between replicas) and a clock. The composition root fills
them with the production adapters, unit tests with the fakes in tests/unit/fakes.py."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from notifier.models import TimelineEvent
from notifier.timeline import TaskTimeline, TimelineHead
from relay_shared.composition import Loops, no_loops


class LockedTimeline(Protocol):
    """A timeline loaded under its row lock; its changes are saved when the block ends cleanly."""

    timeline: TaskTimeline

    async def has_recorded(self, event_id: UUID) -> bool:
        """Appended, held or recorded late already: the event is a repeat."""
        ...


class TimelineReader(Protocol):
    """What a stream reads: the timeline's owner and end, and its events in seq order."""

    async def head(self, task_id: UUID) -> TimelineHead | None: ...

    async def events_after(
        self, task_id: UUID, tenant_id: str, after_seq: int, *, limit: int
    ) -> list[TimelineEvent]: ...


class TimelineStore(TimelineReader, Protocol):
    def locked(self, task_id: UUID, tenant_id: str) -> AbstractAsyncContextManager[LockedTimeline]:
        """Lock (creating if needed) the task's timeline; raises TenantMismatch."""
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
    clock: Clock
    # what runs beside the HTTP server in production, given the built service: the live feed,
    # the hold sweeper and the SQS consumer
    loops: Loops = no_loops
