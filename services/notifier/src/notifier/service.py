"""The notifier's use cases: record an event on its task's timeline, release overdue events,
(stream.py) follow a timeline, (webhooks.py) manage webhook endpoints and (delivery.py) deliver
them; ``Notifier`` is what routes and handlers use.

No SQL and no Redis here: the store and the live publisher are ports (ports.py) that the
composition root fills with PostgreSQL and Redis, and unit tests with in-memory fakes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from notifier.delivery import DeliveryWorker
from notifier.edge import EdgeDelivery
from notifier.models import TimelineEvent
from notifier.ports import Clock, LivePublisher, TimelineStore
from notifier.session import LiveSession
from notifier.stream import TimelineStream
from notifier.timeline import TimelineEntry
from notifier.webhooks import WebhookService
from relay_shared.events import DomainEvent
from relay_shared.sockets import Outbox

log = logging.getLogger(__name__)


class TenantMismatch(ValueError):
    """An event names a task whose timeline belongs to another tenant."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class TimelineService:
    def __init__(
        self,
        store: TimelineStore,
        live: LivePublisher,
        *,
        hold_seconds: float,
        clock: Clock,
        sweep_batch: int = 100,
        on_deliveries_queued: Callable[[], None] = lambda: None,
    ) -> None:
        self._on_deliveries_queued = on_deliveries_queued  # webhook deliveries came with an append
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
        async with self._store.locked(
            entry.task_id, entry.tenant_id, event_id=entry.event_id
        ) as locked:
            if locked.recorded:
                return []
            locked.timeline.offer(entry, now=self._clock())
            appended = locked.timeline.changes.appended
        await self._fan_out(appended, deliveries=locked.deliveries_queued)
        return appended

    async def release_overdue(
        self, *, handed_back_until: datetime | None = None
    ) -> list[TimelineEvent]:
        """Release events held longer than the hold limit, task by task; returns the appended.

        ``handed_back_until`` is when every message this replica's consumer handed back to the
        queue (deferred by an outage, failed, or in flight when the process before it died) is
        visible again. Until a hold limit has passed after that, nothing is released: a missing
        predecessor may be one of those messages, and releasing would overtake it (ADR 0005).
        """
        now = self._clock()
        held_before = now - self._hold
        if handed_back_until is not None and handed_back_until > held_before:
            return []
        released: list[TimelineEvent] = []
        for task_id in await self._store.tasks_holding_since(held_before, limit=self._sweep_batch):
            async with self._store.locked_if_free(task_id) as locked:
                if locked is None:
                    continue  # a consumer holds it now; the next sweep looks again
                locked.timeline.release_overdue(held_before=held_before)
                appended = locked.timeline.changes.appended
            queued = locked.deliveries_queued
            if appended:
                log.info(
                    "released %d held event(s) of task %s after %.0fs",
                    len(appended),
                    task_id,
                    self._hold.total_seconds(),
                )
            await self._fan_out(appended, deliveries=queued)
            released.extend(appended)
        return released

    async def _fan_out(self, appended: Sequence[TimelineEvent], *, deliveries: int) -> None:
        """Publish after commit, and wake the delivery worker when the save queued webhook
        deliveries. A failed publish is logged, not raised: the events are durable, a
        redelivery would be a no-op repeat, and streams re-read the timeline periodically."""
        if deliveries:
            self._on_deliveries_queued()
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


@dataclass(frozen=True)
class Notifier:
    """The notifier's use cases, as routes and handlers use them."""

    timelines: TimelineService
    stream: TimelineStream
    webhooks: WebhookService
    deliveries: DeliveryWorker
    heartbeat_seconds: float  # a comment on an idle SSE stream this often keeps it open
    max_subscriptions: int = 100  # per live connection
    send_queue_frames: int = 100  # frames a live connection's reader may fall behind
    send_timeout_seconds: float = 10.0  # how long a full queue waits before it closes (1013)
    edge: EdgeDelivery | None = None  # the WebSocket API's connections (API Gateway edge only)

    def session(self, tenant_id: str) -> LiveSession:
        """A new live connection's subscriptions."""
        return LiveSession(
            self.stream,
            tenant_id,
            max_subscriptions=self.max_subscriptions,
            outbox=Outbox(self.send_queue_frames, patience_seconds=self.send_timeout_seconds),
        )
