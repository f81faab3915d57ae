"""SQL for the notifier schema: timelines, timeline_events, held_events, late_events, and the
webhook tables (webhook_endpoints, webhook_deliveries)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from notifier.models import (
    TEST_EVENT_TYPE,
    DeliveryStatus,
    TimelineEvent,
    WebhookEndpointUpdate,
)
from notifier.ordering import Causality
from notifier.service import TenantMismatch
from notifier.timeline import HeldEntry, TaskTimeline, TimelineEntry, TimelineHead
from notifier.webhook_records import (
    AttemptOutcome,
    ClaimBounds,
    ClaimedDelivery,
    DeliveryPosition,
    DeliveryRecord,
    EndpointRecord,
)
from relay_shared.db import Database, execute_rows

Connection = AsyncConnection[dict[str, Any]]

# The timeline under its row lock, its held events and whether an event is recorded already, in
# one round trip (migration 0003: a function, so that the read after the lock sees every writer
# that held it before). A sweeper skips a timeline a consumer is writing (skip_locked); a
# consumer waits its turn.
_LOCK_TIMELINE = "SELECT * FROM lock_timeline(%s, %s, %s)"


class LockedRow:
    def __init__(self, timeline: TaskTimeline, *, recorded: bool) -> None:
        self.timeline = timeline
        self.recorded = recorded
        self.deliveries_queued = 0


class PostgresTimelineStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    @asynccontextmanager
    async def locked(
        self, task_id: UUID, tenant_id: str, *, event_id: UUID | None = None
    ) -> AsyncIterator[LockedRow]:
        async with self._db.transaction() as conn:
            locked = await self._load(conn, task_id, skip_locked=False, event_id=event_id)
            if locked is None:  # the task's first event: create the row, then lock it
                await conn.execute(
                    "INSERT INTO timelines (task_id, tenant_id) VALUES (%s, %s)"
                    " ON CONFLICT (task_id) DO NOTHING",
                    (task_id, tenant_id),
                )
                locked = await self._load(conn, task_id, skip_locked=False, event_id=event_id)
            if locked is None:  # pragma: no cover - inserted above in this transaction
                raise RuntimeError(f"timeline {task_id} vanished")
            if locked.timeline.tenant_id != tenant_id:
                raise TenantMismatch(
                    f"task {task_id} belongs to another tenant than the event's {tenant_id!r}"
                )
            yield locked
            locked.deliveries_queued = await _save(conn, locked.timeline)

    @asynccontextmanager
    async def locked_if_free(self, task_id: UUID) -> AsyncIterator[LockedRow | None]:
        async with self._db.transaction() as conn:
            locked = await self._load(conn, task_id, skip_locked=True)
            if locked is None:
                yield None
                return
            yield locked
            locked.deliveries_queued = await _save(conn, locked.timeline)

    async def tasks_holding_since(self, held_before: datetime, *, limit: int) -> list[UUID]:
        async with self._db.statement() as conn:
            cur = await conn.execute(
                "SELECT task_id FROM held_events WHERE held_since <= %s"
                " GROUP BY task_id ORDER BY min(held_since) LIMIT %s",
                (held_before, limit),
            )
            return [row["task_id"] for row in await cur.fetchall()]

    async def head(self, task_id: UUID) -> TimelineHead | None:
        async with self._db.statement() as conn:
            cur = await conn.execute(
                "SELECT tenant_id, terminal_seq FROM timelines WHERE task_id = %s", (task_id,)
            )
            row = await cur.fetchone()
        return None if row is None else TimelineHead(row["tenant_id"], row["terminal_seq"])

    async def events_after(
        self, task_id: UUID, tenant_id: str, after_seq: int, *, limit: int
    ) -> list[TimelineEvent]:
        async with self._db.statement() as conn:
            cur = await conn.execute(
                "SELECT type, seq, task_id, occurred_at, data, event_id, tenant_id"
                " FROM timeline_events WHERE task_id = %s AND tenant_id = %s AND seq > %s"
                " ORDER BY seq LIMIT %s",
                (task_id, tenant_id, after_seq, limit),
            )
            return [TimelineEvent.model_validate(row) for row in await cur.fetchall()]

    async def _load(
        self, conn: Connection, task_id: UUID, *, skip_locked: bool, event_id: UUID | None = None
    ) -> LockedRow | None:
        """The timeline under its row lock (None: no row, or locked and ``skip_locked``), with
        whether ``event_id`` is recorded on it already."""
        cur = await conn.execute(_LOCK_TIMELINE, (task_id, event_id, skip_locked))
        rows = await cur.fetchall()
        if not rows:
            return None
        row = rows[0]
        timeline = TaskTimeline(
            task_id,
            row["tenant_id"],
            last_seq=row["last_seq"],
            terminal_seq=row["terminal_seq"],
            provided=row["provided"],
            held=[_held_entry(task_id, h) for h in rows if h["event_id"] is not None],
        )
        return LockedRow(timeline, recorded=rows[0]["recorded"])


def _held_entry(task_id: UUID, row: dict[str, Any]) -> HeldEntry:
    entry = TimelineEntry(
        event_id=row["event_id"],
        task_id=task_id,
        tenant_id=row["tenant_id"],  # the timeline's: an event of another tenant is refused
        type=row["type"],
        occurred_at=row["occurred_at"],
        data=row["data"],
        causality=Causality(
            provides=frozenset(row["provides"]),
            requires=frozenset(row["requires"]),
            terminal=row["terminal"],
        ),
        traceparent=row["traceparent"],
    )
    return HeldEntry(entry, row["held_since"])


_INSERT_EVENT = (
    "INSERT INTO timeline_events (task_id, seq, event_id, tenant_id, type, occurred_at, data)"
    " VALUES (%(task_id)s, %(seq)s, %(event_id)s, %(tenant_id)s, %(type)s, %(occurred_at)s,"
    " %(data)s)"
)
_UPDATE_TIMELINE = (
    "UPDATE timelines SET last_seq = %(last_seq)s, terminal_seq = %(terminal_seq)s,"
    " provided = %(provided)s, updated_at = now() WHERE task_id = %(task_id)s"
)


def _event_params(event: TimelineEvent) -> dict[str, Any]:
    return {
        "task_id": event.task_id,
        "seq": event.seq,
        "event_id": event.event_id,
        "tenant_id": event.tenant_id,
        "type": event.type,
        "occurred_at": event.occurred_at,
        "data": Jsonb(event.data),
    }


def _timeline_params(timeline: TaskTimeline) -> dict[str, Any]:
    return {
        "last_seq": timeline.last_seq,
        "terminal_seq": timeline.terminal_seq,
        "provided": sorted(timeline.provided),
        "task_id": timeline.task_id,
    }


async def _save(conn: Connection, timeline: TaskTimeline) -> int:
    """Write the timeline's changes; returns how many webhook deliveries that queued."""
    changes = timeline.changes
    if changes.empty:
        return 0
    if len(changes.appended) == 1 and not (changes.newly_held or changes.released or changes.late):
        return await _append_one(conn, timeline, changes.appended[0])
    queued = 0
    async with conn.cursor() as cur:
        if changes.appended:
            await execute_rows(cur, _INSERT_EVENT, [_event_params(e) for e in changes.appended])
        if changes.released:
            await cur.execute(
                "DELETE FROM held_events WHERE event_id = ANY(%s)", (changes.released,)
            )
        if changes.newly_held:
            await execute_rows(
                cur,
                "INSERT INTO held_events (event_id, task_id, tenant_id, type, occurred_at, data,"
                " provides, requires, terminal, held_since, traceparent)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        h.entry.event_id,
                        h.entry.task_id,
                        h.entry.tenant_id,
                        h.entry.type,
                        h.entry.occurred_at,
                        Jsonb(dict(h.entry.data)),
                        sorted(h.entry.causality.provides),
                        sorted(h.entry.causality.requires),
                        h.entry.terminal,
                        h.held_since,
                        h.entry.traceparent,
                    )
                    for h in changes.newly_held
                ],
            )
        if changes.late:
            await execute_rows(
                cur,
                "INSERT INTO late_events (event_id, task_id, tenant_id, type, occurred_at, data)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING",
                [
                    (e.event_id, e.task_id, e.tenant_id, e.type, e.occurred_at, Jsonb(dict(e.data)))
                    for e in changes.late
                ],
            )
        if changes.appended:
            queued = await _queue_deliveries(cur, changes.appended)
        await cur.execute(_UPDATE_TIMELINE, _timeline_params(timeline))
    return queued


async def _append_one(conn: Connection, timeline: TaskTimeline, event: TimelineEvent) -> int:
    """The usual change, one event appended in order and nothing held or released, as one
    statement: the event, its webhook deliveries and the timeline's new head together."""
    cur = await conn.execute(
        _APPEND_ONE, _event_params(event) | _delivery_params(event) | _timeline_params(timeline)
    )
    row = await cur.fetchone()
    return 0 if row is None else int(row["queued"])


# One delivery per enabled endpoint of the tenant whose filter takes the event.
_QUEUE_DELIVERIES = (
    "INSERT INTO webhook_deliveries (id, endpoint_id, tenant_id, event_id, type, task_id, seq,"
    " body, traceparent, next_attempt_at)"
    " SELECT gen_random_uuid(), e.id, e.tenant_id, %(event_id)s, %(type)s, %(task_id)s, %(seq)s,"
    " %(body)s, %(traceparent)s, now()"
    " FROM webhook_endpoints e"
    " WHERE e.tenant_id = %(tenant_id)s AND e.enabled AND e.event_types && ARRAY[%(type)s, '*']"
)


# One statement of fixed fragments (no input in the text):
_APPEND_ONE = (
    f"WITH appended AS ({_INSERT_EVENT}), queued AS ({_QUEUE_DELIVERIES} RETURNING 1)"  # noqa: S608
    f" {_UPDATE_TIMELINE} RETURNING (SELECT count(*) FROM queued) AS queued"
)


def _delivery_params(event: TimelineEvent) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "type": event.type,
        "task_id": event.task_id,
        "seq": event.seq,
        "body": event.client_json,
        "traceparent": event.traceparent,
        "tenant_id": event.tenant_id,
    }


async def _queue_deliveries(cur: Any, appended: list[TimelineEvent]) -> int:
    """Queue webhook deliveries for events just appended, in the append's transaction; returns
    how many (rowcount sums the statements)."""
    return await execute_rows(cur, _QUEUE_DELIVERIES, [_delivery_params(e) for e in appended])


_ENDPOINT_COLUMNS = (
    "id, tenant_id, url, event_types, description, created_at, secret, enabled,"
    " disabled_reason, previous_secret, previous_secret_expires_at, failing_since"
)
_DELIVERY_COLUMNS = (
    "id, event_id, type, task_id, seq, status, attempts, last_status_code, last_error,"
    " next_attempt_at, created_at"
)
# Replayed events: the endpoint's filter applied to the tenant's timeline events.
_SELECT_REPLAYED = (
    "SELECT type, seq, task_id, occurred_at, data, event_id, tenant_id FROM timeline_events"
    " WHERE tenant_id = %(tenant_id)s AND {where}"
    " AND (type = ANY(%(types)s) OR '*' = ANY(%(types)s)) ORDER BY {order} LIMIT %(limit)s"
)


def _endpoint(row: dict[str, Any]) -> EndpointRecord:
    return EndpointRecord(
        id=row["id"],
        tenant_id=row["tenant_id"],
        url=row["url"],
        event_types=tuple(row["event_types"]),
        description=row["description"],
        created_at=row["created_at"],
        sealed_secret=row["secret"],
        enabled=row["enabled"],
        disabled_reason=row["disabled_reason"],
        sealed_previous_secret=row["previous_secret"],
        previous_secret_expires_at=row["previous_secret_expires_at"],
        failing_since=row["failing_since"],
    )


def _delivery(row: dict[str, Any]) -> DeliveryRecord:
    return DeliveryRecord(**{**row, "status": DeliveryStatus(row["status"])})


class PostgresWebhookStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def add_endpoint(self, endpoint: EndpointRecord, *, max_per_tenant: int) -> bool:
        async with self._db.transaction() as conn:
            # one creator per tenant at a time, so the count cannot be raced past the limit
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 12))", (endpoint.tenant_id,)
            )
            cur = await conn.execute(
                "SELECT count(*) AS n FROM webhook_endpoints WHERE tenant_id = %s",
                (endpoint.tenant_id,),
            )
            row = await cur.fetchone()
            if row is not None and row["n"] >= max_per_tenant:
                return False
            await conn.execute(
                "INSERT INTO webhook_endpoints (id, tenant_id, url, event_types, description,"
                " created_at, secret) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    endpoint.id,
                    endpoint.tenant_id,
                    endpoint.url,
                    list(endpoint.event_types),
                    endpoint.description,
                    endpoint.created_at,
                    endpoint.sealed_secret,
                ),
            )
            return True

    async def endpoints(self, tenant_id: str) -> list[EndpointRecord]:
        async with self._db.statement() as conn:
            cur = await conn.execute(
                f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE tenant_id = %s"  # noqa: S608
                " ORDER BY created_at, id",
                (tenant_id,),
            )
            return [_endpoint(row) for row in await cur.fetchall()]

    async def endpoint(self, tenant_id: str, endpoint_id: UUID) -> EndpointRecord | None:
        async with self._db.statement() as conn:
            cur = await conn.execute(
                f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints"  # noqa: S608 - fixed columns
                " WHERE tenant_id = %s AND id = %s",
                (tenant_id, endpoint_id),
            )
            row = await cur.fetchone()
        return None if row is None else _endpoint(row)

    async def update_endpoint(
        self, tenant_id: str, endpoint_id: UUID, changes: WebhookEndpointUpdate
    ) -> EndpointRecord | None:
        assignments = ["updated_at = now()"]
        params: dict[str, Any] = {"tenant_id": tenant_id, "id": endpoint_id}
        if changes.url is not None:
            assignments.append("url = %(url)s")
            params["url"] = changes.url
        if changes.event_types is not None:
            assignments.append("event_types = %(event_types)s")
            params["event_types"] = changes.event_types
        if changes.description is not None:
            assignments.append("description = %(description)s")
            params["description"] = changes.description
        if changes.enabled is True:
            assignments.append("enabled = true, disabled_reason = NULL, failing_since = NULL")
        elif changes.enabled is False:
            assignments.append("enabled = false, disabled_reason = 'disabled by the tenant'")
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                f"UPDATE webhook_endpoints SET {', '.join(assignments)}"  # noqa: S608 - fixed fragments
                f" WHERE tenant_id = %(tenant_id)s AND id = %(id)s RETURNING {_ENDPOINT_COLUMNS}",
                params,
            )
            row = await cur.fetchone()
            if row is not None and changes.enabled is True:
                # deliveries it missed while disabled are due again, from now on
                await conn.execute(
                    "UPDATE webhook_deliveries SET next_attempt_at = now()"
                    " WHERE endpoint_id = %s AND status = 'pending' AND next_attempt_at > now()",
                    (endpoint_id,),
                )
        return None if row is None else _endpoint(row)

    async def delete_endpoint(self, tenant_id: str, endpoint_id: UUID) -> bool:
        async with self._db.statement() as conn:
            cur = await conn.execute(
                "DELETE FROM webhook_endpoints WHERE tenant_id = %s AND id = %s",
                (tenant_id, endpoint_id),
            )
            return cur.rowcount == 1

    async def rotate_secret(
        self, tenant_id: str, endpoint_id: UUID, sealed_secret: str, previous_until: datetime
    ) -> bool:
        async with self._db.statement() as conn:
            cur = await conn.execute(
                "UPDATE webhook_endpoints SET previous_secret = secret,"
                " previous_secret_expires_at = %s, secret = %s, updated_at = now()"
                " WHERE tenant_id = %s AND id = %s",
                (previous_until, sealed_secret, tenant_id, endpoint_id),
            )
            return cur.rowcount == 1

    async def deliveries(
        self,
        tenant_id: str,
        endpoint_id: UUID,
        *,
        status: DeliveryStatus | None,
        after: DeliveryPosition | None,
        limit: int,
    ) -> list[DeliveryRecord]:
        where = ["tenant_id = %(tenant_id)s", "endpoint_id = %(endpoint_id)s"]
        params: dict[str, Any] = {"tenant_id": tenant_id, "endpoint_id": endpoint_id}
        if status is not None:
            where.append("status = %(status)s")
            params["status"] = str(status)
        if after is not None:
            where.append("(created_at, id) < (%(created_at)s, %(id)s)")
            params |= {"created_at": after.created_at, "id": after.id}
        async with self._db.statement() as conn:
            cur = await conn.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries"  # noqa: S608 - fixed fragments
                f" WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC LIMIT %(limit)s",
                params | {"limit": limit},
            )
            return [_delivery(row) for row in await cur.fetchall()]

    async def queue_replay_of_task(
        self, endpoint: EndpointRecord, task_id: UUID, after_seq: int, *, limit: int
    ) -> int | None:
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "SELECT 1 FROM timelines WHERE task_id = %s AND tenant_id = %s",
                (task_id, endpoint.tenant_id),
            )
            if await cur.fetchone() is None:
                return None
            return await _queue_replay(
                conn,
                endpoint,
                _SELECT_REPLAYED.format(
                    where="task_id = %(task_id)s AND seq > %(after)s", order="seq"
                ),
                _replay_params(endpoint, limit) | {"task_id": task_id, "after": after_seq},
            )

    async def queue_replay_since(
        self, endpoint: EndpointRecord, since: datetime, *, limit: int
    ) -> int:
        async with self._db.transaction() as conn:
            return await _queue_replay(
                conn,
                endpoint,
                _SELECT_REPLAYED.format(
                    where="appended_at >= %(since)s", order="appended_at, task_id, seq"
                ),
                _replay_params(endpoint, limit) | {"since": since},
            )

    async def queue_test(self, endpoint: EndpointRecord, event_id: UUID, body: str) -> None:
        async with self._db.statement() as conn:
            await conn.execute(
                "INSERT INTO webhook_deliveries (id, endpoint_id, tenant_id, event_id, type, body,"
                " next_attempt_at) VALUES (gen_random_uuid(), %s, %s, %s, %s, %s, now())",
                (endpoint.id, endpoint.tenant_id, event_id, TEST_EVENT_TYPE, body),
            )

    async def claim_due(
        self, bounds: ClaimBounds, *, lease_seconds: float
    ) -> list[ClaimedDelivery]:
        async with self._db.statement() as conn:
            cur = await conn.execute(
                # rank due rows per endpoint, counting what is already in flight to it; of those
                # within the endpoint bound, rank per tenant the same way; take the oldest
                "WITH due AS ("
                "  SELECT d.id, d.tenant_id, d.next_attempt_at,"
                "    row_number() OVER ("
                "      PARTITION BY d.endpoint_id ORDER BY d.next_attempt_at, d.id)"
                "      + coalesce(busy.n, 0) AS endpoint_nth"
                "  FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id"
                "  LEFT JOIN unnest(%(endpoints)s::uuid[], %(endpoint_counts)s::int[])"
                "    AS busy (endpoint_id, n) ON busy.endpoint_id = d.endpoint_id"
                "  WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND e.enabled),"
                " fair AS ("
                "  SELECT due.id, due.next_attempt_at,"
                "    row_number() OVER ("
                "      PARTITION BY due.tenant_id ORDER BY due.next_attempt_at, due.id)"
                "      + coalesce(busy.n, 0) AS tenant_nth"
                "  FROM due LEFT JOIN unnest(%(tenants)s::text[], %(tenant_counts)s::int[])"
                "    AS busy (tenant_id, n) ON busy.tenant_id = due.tenant_id"
                "  WHERE due.endpoint_nth <= %(per_endpoint)s),"
                " picked AS ("
                "  SELECT d.id FROM webhook_deliveries d"
                "  WHERE d.id IN (SELECT id FROM fair WHERE tenant_nth <= %(per_tenant)s"
                "                 ORDER BY next_attempt_at LIMIT %(limit)s)"
                "    AND d.status = 'pending' AND d.next_attempt_at <= now()"
                "  FOR UPDATE SKIP LOCKED)"
                # the attempt counts from its claim: one cut short by a crash counts too
                " UPDATE webhook_deliveries d"
                " SET next_attempt_at = now() + make_interval(secs => %(lease)s),"
                " attempts = d.attempts + 1"
                " FROM picked, webhook_endpoints e"
                " WHERE d.id = picked.id AND e.id = d.endpoint_id"
                " RETURNING d.id, d.endpoint_id, d.tenant_id, e.url, d.event_id, d.type,"
                " d.task_id, d.seq, d.body, d.traceparent, d.attempts - 1 AS attempts,"
                " e.secret AS sealed_secret,"
                " e.previous_secret AS sealed_previous_secret, e.previous_secret_expires_at,"
                " e.failing_since",
                {
                    "endpoints": list(bounds.endpoints_in_flight),
                    "endpoint_counts": list(bounds.endpoints_in_flight.values()),
                    "tenants": list(bounds.tenants_in_flight),
                    "tenant_counts": list(bounds.tenants_in_flight.values()),
                    "per_endpoint": bounds.per_endpoint,
                    "per_tenant": bounds.per_tenant,
                    "limit": bounds.limit,
                    "lease": lease_seconds,
                },
            )
            return [ClaimedDelivery(**row) for row in await cur.fetchall()]

    async def record_outcome(self, delivery: ClaimedDelivery, outcome: AttemptOutcome) -> None:
        result = outcome.result
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE webhook_deliveries SET status = %s,"
                " last_status_code = %s, last_error = %s, last_attempt_at = %s,"
                " next_attempt_at = %s WHERE id = %s AND status = 'pending'",
                (
                    str(outcome.status),
                    result.status_code,
                    None if result.error is None else result.error[:1000],
                    outcome.at,
                    outcome.next_attempt_at,
                    delivery.id,
                ),
            )
            if result.succeeded:
                await conn.execute(
                    "UPDATE webhook_endpoints SET failing_since = NULL"
                    " WHERE id = %s AND failing_since IS NOT NULL",
                    (delivery.endpoint_id,),
                )
            elif outcome.disable_reason is not None:
                await conn.execute(
                    "UPDATE webhook_endpoints SET enabled = false, disabled_reason = %s,"
                    " updated_at = now() WHERE id = %s AND enabled",
                    (outcome.disable_reason, delivery.endpoint_id),
                )
            else:
                await conn.execute(
                    "UPDATE webhook_endpoints SET failing_since = %s"
                    " WHERE id = %s AND failing_since IS NULL",
                    (outcome.at, delivery.endpoint_id),
                )

    async def backlog(self) -> int:
        async with self._db.statement() as conn:
            cur = await conn.execute(
                "SELECT count(*) AS n FROM webhook_deliveries d"
                " JOIN webhook_endpoints e ON e.id = d.endpoint_id"
                " WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND e.enabled"
            )
            row = await cur.fetchone()
        return 0 if row is None else int(row["n"])

    async def purge_finished(self, before: datetime) -> int:
        async with self._db.statement() as conn:
            cur = await conn.execute(
                "DELETE FROM webhook_deliveries WHERE status <> 'pending' AND last_attempt_at < %s",
                (before,),
            )
            return cur.rowcount


async def _queue_replay(
    conn: Connection, endpoint: EndpointRecord, query: str, params: dict[str, Any]
) -> int:
    """Queue the events ``query`` selects for ``endpoint``, with the same body as when they
    were first appended."""
    cur = await conn.execute(query, params)
    events = [TimelineEvent.model_validate(row) for row in await cur.fetchall()]
    if events:
        async with conn.cursor() as insert:
            await insert.executemany(
                "INSERT INTO webhook_deliveries (id, endpoint_id, tenant_id, event_id, type,"
                " task_id, seq, body, next_attempt_at)"
                " VALUES (gen_random_uuid(), %s, %s, %s, %s, %s, %s, %s, now())",
                [
                    (
                        endpoint.id,
                        e.tenant_id,
                        e.event_id,
                        e.type,
                        e.task_id,
                        e.seq,
                        e.client_json,
                    )
                    for e in events
                ],
            )
    return len(events)


def _replay_params(endpoint: EndpointRecord, limit: int) -> dict[str, Any]:
    return {
        "endpoint_id": endpoint.id,
        "tenant_id": endpoint.tenant_id,
        "types": list(endpoint.event_types),
        "limit": limit,
    }
