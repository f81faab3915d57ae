"""Transactional outbox: events are written in the same transaction as the change they report,
and a relay publishes them to EventBridge after commit.

``Outbox.add`` is the only way a service publishes. An insert trigger (see the kit migration)
sends ``NOTIFY`` on commit, so the relay wakes at once; it also polls, which picks up rows that
a crashed relay left behind and covers a lost notification.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from opentelemetry import metrics, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from psycopg import AsyncConnection
from psycopg.rows import dict_row, tuple_row

from relay_shared.backoff import Backoff
from relay_shared.db import Database, execute_rows
from relay_shared.events import DomainEvent
from relay_shared.loops import sleep_until_stopped
from relay_shared.publisher import EventBridgePublisher, OutboundEvent, PublishOutcome
from relay_shared.tracing import (
    current_traceparent,
    from_traceparent,
    tracer,
    with_traceparent,
    xray_header,
)

log = logging.getLogger(__name__)

# room for metadata.traceparent, which the relay sets when it publishes
TRACE_CONTEXT_BYTES = 128
OUTBOX_LAG = metrics.get_meter("relay").create_histogram(
    "relay.outbox.lag",
    unit="s",
    description="From an event's commit to its publication on the bus.",
)


def notify_channel(schema: str) -> str:
    return f"relay_outbox_{schema}"


class Outbox:
    """Writes events into this service's outbox table, inside the caller's transaction."""

    async def add(self, conn: AsyncConnection[Any], *events: DomainEvent) -> None:
        rows = [outbox_row(event) for event in events]
        async with conn.cursor() as cur:
            await execute_rows(cur, OUTBOX_INSERT, rows)


# Named parameters (outbox_row), so a service may also run it as the last part of a statement
# that writes its own rows first (``WITH ... INSERT INTO outbox``): one round trip for both.
OUTBOX_INSERT = (
    "INSERT INTO outbox (event_id, source, detail_type, detail)"
    " VALUES (%(event_id)s, %(source)s, %(detail_type)s, %(detail)s::jsonb)"
    " ON CONFLICT (event_id) DO NOTHING"
)


def outbox_row(event: DomainEvent) -> dict[str, str]:
    """``OUTBOX_INSERT``'s parameters for ``event``; raises EventTooLarge now, not at publish
    time (with room for the traceparent the relay sets)."""
    outbound = to_outbound(event)
    outbound.check_size(reserve=TRACE_CONTEXT_BYTES)
    return {
        "event_id": outbound.event_id,
        "source": outbound.source,
        "detail_type": outbound.detail_type,
        "detail": outbound.detail,
    }


def to_outbound(event: DomainEvent) -> OutboundEvent:
    return OutboundEvent(
        event_id=str(event.metadata.event_id),
        source=event.source(),
        detail_type=event.name,
        detail=json.dumps(event.detail(), separators=(",", ":")),
    )


class OutboxRelay:
    """Publishes unpublished outbox rows in id order; safe to run in every replica."""

    def __init__(
        self,
        database: Database,
        publisher: EventBridgePublisher,
        *,
        schema: str,
        poll_interval: float = 1.0,
        batch_size: int = 100,
        max_retry_delay: float = 60.0,
        max_outage_delay: float = 10.0,
    ) -> None:
        """``max_retry_delay``: the longest backoff of an entry EventBridge refused;
        ``max_outage_delay``: the longest wait between tries while PostgreSQL or EventBridge
        is unreachable (short, so publishing resumes soon after it returns)."""
        self._db = database
        self._publisher = publisher
        self._channel = notify_channel(schema)
        self._poll_interval = poll_interval
        self._batch_size = batch_size
        self._retry_backoff = Backoff(initial=1.0, maximum=max_retry_delay)
        self._outage_backoff = Backoff(initial=2 * poll_interval, maximum=max_outage_delay)
        self._stopping = asyncio.Event()
        self.outage: str | None = None  # why the last PutEvents call got no usable answer

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Publish until stopped. PostgreSQL or EventBridge going away makes it wait (capped
        backoff with jitter) and try again; it never ends on its own."""
        failures = 0
        while not self._stopping.is_set():
            try:
                async with self._db.listen(self._channel) as listener:
                    while not self._stopping.is_set():
                        await self._publish_due()
                        if self.outage is None:
                            if failures:
                                log.info("outbox relay: publishing again")
                            failures = 0
                            await self._wait_for_work(listener)
                            continue
                        # Rows stay due, in order: the first call that gets through publishes
                        # them.
                        failures += 1
                        delay = self._outage_backoff.delay(failures)
                        log.warning(
                            "outbox relay: EventBridge unavailable (%s); retrying in %.1fs",
                            self.outage,
                            delay,
                        )
                        await sleep_until_stopped(self._stopping, delay)
            except (psycopg.Error, OSError) as exc:
                failures += 1
                delay = self._outage_backoff.delay(failures)
                log.warning("outbox relay: %s; retrying in %.1fs", exc, delay)
                await sleep_until_stopped(self._stopping, delay)
        await self._drain_before_exit()

    async def _publish_due(self) -> None:
        while await self.publish_pending() == self._batch_size and self.outage is None:
            pass

    async def _drain_before_exit(self) -> None:
        """Publish what was committed while stopping, e.g. by work finishing in the grace period."""
        try:
            await self._publish_due()
        except (psycopg.Error, OSError) as exc:
            log.warning(
                "outbox relay: could not drain before exit (%s); rows stay for the next start", exc
            )
        if self.outage is not None:
            log.warning(
                "outbox relay: EventBridge unavailable at exit; rows stay for the next start"
            )

    async def publish_pending(self) -> int:
        """Publish one batch of due rows; returns how many rows it picked. Sets ``outage``
        when EventBridge gave no usable answer (those rows stay due, unchanged but for
        ``last_error``); entries EventBridge refused are retried later with backoff."""
        async with self._db.transaction() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "SELECT event_id, source, detail_type, detail::text AS detail, attempts,"
                " extract(epoch FROM clock_timestamp() - created_at)::float8 AS lag"
                " FROM outbox WHERE published_at IS NULL AND next_attempt_at <= now()"
                " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
                (self._batch_size,),
            )
            rows = await cur.fetchall()
            if not rows:
                self.outage = None
                return 0
            sends = [self._send(r) for r in rows]
            try:
                outcome = await self._publisher.publish([outbound for outbound, _ in sends])
            except BaseException:
                _end_spans(sends, None)
                raise
            _end_spans(sends, outcome)
            self.outage = outcome.outage
            if outcome.published:
                lags = {str(r["event_id"]): r["lag"] for r in rows}
                for event_id in outcome.published:
                    OUTBOX_LAG.record(lags[event_id])
                await cur.execute(
                    "UPDATE outbox SET published_at = now(), last_error = NULL"
                    " WHERE event_id = ANY(%s::uuid[])",
                    (outcome.published,),
                )
            if outcome.outage is not None:
                await cur.execute(
                    "UPDATE outbox SET last_error = %s WHERE event_id = ANY(%s::uuid[])",
                    (outcome.outage[:1000], list(outcome.failed)),
                )
                return len(rows)
            attempts = {str(r["event_id"]): r["attempts"] for r in rows}
            for event_id, reason in outcome.failed.items():
                delay = self._retry_backoff.delay(attempts[event_id] + 1)
                log.warning("outbox: event %s not published (%s)", event_id, reason)
                await cur.execute(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = %s,"
                    " next_attempt_at = now() + make_interval(secs => %s)"
                    " WHERE event_id = %s",
                    (reason[:1000], delay, event_id),
                )
            return len(rows)

    def _send(self, row: dict[str, Any]) -> tuple[OutboundEvent, Span]:
        """The row as a PutEvents entry, under a send span that continues the event's trace
        and becomes its parent for consumers (see tracing.py)."""
        detail = row["detail"]
        fields = _metadata_of(detail)
        span = tracer().start_span(
            f"send {row['detail_type']}",
            context=from_traceparent(fields.get("traceparent")),
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "aws_eventbridge",
                "messaging.operation.type": "send",
                "messaging.operation.name": "PutEvents",
                "messaging.destination.name": self._publisher.bus_name,
                "messaging.message.id": str(row["event_id"]),
                "relay.event.type": row["detail_type"],
                **{f"relay.{k}": fields[k] for k in ("task_id", "tenant_id") if k in fields},
            },
        )
        context = trace.set_span_in_context(span)
        outbound = OutboundEvent(
            event_id=str(row["event_id"]),
            source=row["source"],
            detail_type=row["detail_type"],
            detail=with_traceparent(detail, current_traceparent(context)),
            trace_header=xray_header(context),
        )
        return outbound, span

    async def _wait_for_work(self, listener: AsyncConnection[Any]) -> None:
        """Return on a NOTIFY, after the poll interval, or when stopping."""
        notified = asyncio.ensure_future(self._next_notify(listener))
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({notified, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (notified, stopping):
                task.cancel()
            await asyncio.gather(notified, stopping, return_exceptions=True)
        if notified.done() and not notified.cancelled() and notified.exception():
            raise notified.exception()  # type: ignore[misc]

    async def _next_notify(self, listener: AsyncConnection[Any]) -> None:
        async for _ in listener.notifies(timeout=self._poll_interval, stop_after=1):
            pass


@dataclass(frozen=True)
class OutboxLag:
    """How far publishing is behind: rows waiting, and how long the oldest has waited."""

    unpublished: int
    oldest_seconds: float | None  # None when nothing waits


def _metadata_of(detail: str) -> dict[str, str]:
    try:
        metadata = json.loads(detail).get("metadata", {})
    except (ValueError, AttributeError):
        return {}
    if not isinstance(metadata, dict):
        return {}
    return {k: v for k, v in metadata.items() if isinstance(v, str)}


def _end_spans(sends: list[tuple[OutboundEvent, Span]], outcome: PublishOutcome | None) -> None:
    for outbound, span in sends:
        reason = "not sent" if outcome is None else outcome.failed.get(outbound.event_id)
        if reason is not None:
            span.set_status(Status(StatusCode.ERROR, reason))
        span.end()


async def outbox_lag(conn: AsyncConnection[Any]) -> OutboxLag:
    async with conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute(
            "SELECT count(*), extract(epoch FROM now() - min(created_at))::float"
            " FROM outbox WHERE published_at IS NULL"
        )
        row = await cur.fetchone()
    if row is None:  # pragma: no cover - an aggregate always answers one row
        return OutboxLag(0, None)
    return OutboxLag(int(row[0]), None if row[1] is None else max(0.0, float(row[1])))


async def pending_count(conn: AsyncConnection[Any]) -> int:
    async with conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        row = await cur.fetchone()
    return int(row[0]) if row else 0
