"""SQL for the notifier schema: timelines, timeline_events, held_events, late_events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from notifier.models import TimelineEvent
from notifier.ordering import Causality
from notifier.service import TenantMismatch
from notifier.timeline import HeldEntry, TaskTimeline, TimelineEntry, TimelineHead
from relay_shared.db import Database

Connection = AsyncConnection[dict[str, Any]]

_SELECT_TIMELINE = (
    "SELECT tenant_id, last_seq, terminal_seq, provided FROM timelines WHERE task_id = %s"
)
# A sweeper skips a timeline a consumer is writing; a consumer waits its turn.
_LOCK_TIMELINE = {
    False: _SELECT_TIMELINE + " FOR UPDATE",
    True: _SELECT_TIMELINE + " FOR UPDATE SKIP LOCKED",
}


class LockedRow:
    def __init__(self, conn: Connection, timeline: TaskTimeline) -> None:
        self._conn = conn
        self.timeline = timeline

    async def has_recorded(self, event_id: UUID) -> bool:
        cur = await self._conn.execute(
            "SELECT EXISTS (SELECT 1 FROM timeline_events WHERE event_id = %(id)s)"
            " OR EXISTS (SELECT 1 FROM held_events WHERE event_id = %(id)s)"
            " OR EXISTS (SELECT 1 FROM late_events WHERE event_id = %(id)s) AS recorded",
            {"id": event_id},
        )
        row = await cur.fetchone()
        return bool(row and row["recorded"])


class PostgresTimelineStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    @asynccontextmanager
    async def locked(self, task_id: UUID, tenant_id: str) -> AsyncIterator[LockedRow]:
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO timelines (task_id, tenant_id) VALUES (%s, %s)"
                " ON CONFLICT (task_id) DO NOTHING",
                (task_id, tenant_id),
            )
            timeline = await self._load(conn, task_id, skip_locked=False)
            if timeline is None:  # pragma: no cover - inserted above in this transaction
                raise RuntimeError(f"timeline {task_id} vanished")
            if timeline.tenant_id != tenant_id:
                raise TenantMismatch(
                    f"task {task_id} belongs to another tenant than the event's {tenant_id!r}"
                )
            locked = LockedRow(conn, timeline)
            yield locked
            await _save(conn, timeline)

    @asynccontextmanager
    async def locked_if_free(self, task_id: UUID) -> AsyncIterator[LockedRow | None]:
        async with self._db.transaction() as conn:
            timeline = await self._load(conn, task_id, skip_locked=True)
            if timeline is None:
                yield None
                return
            yield LockedRow(conn, timeline)
            await _save(conn, timeline)

    async def tasks_holding_since(self, held_before: datetime, *, limit: int) -> list[UUID]:
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "SELECT task_id FROM held_events WHERE held_since <= %s"
                " GROUP BY task_id ORDER BY min(held_since) LIMIT %s",
                (held_before, limit),
            )
            return [row["task_id"] for row in await cur.fetchall()]

    async def head(self, task_id: UUID) -> TimelineHead | None:
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "SELECT tenant_id, terminal_seq FROM timelines WHERE task_id = %s", (task_id,)
            )
            row = await cur.fetchone()
        return None if row is None else TimelineHead(row["tenant_id"], row["terminal_seq"])

    async def events_after(
        self, task_id: UUID, tenant_id: str, after_seq: int, *, limit: int
    ) -> list[TimelineEvent]:
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "SELECT type, seq, task_id, occurred_at, data, event_id, tenant_id"
                " FROM timeline_events WHERE task_id = %s AND tenant_id = %s AND seq > %s"
                " ORDER BY seq LIMIT %s",
                (task_id, tenant_id, after_seq, limit),
            )
            return [TimelineEvent.model_validate(row) for row in await cur.fetchall()]

    async def _load(
        self, conn: Connection, task_id: UUID, *, skip_locked: bool
    ) -> TaskTimeline | None:
        cur = await conn.execute(_LOCK_TIMELINE[skip_locked], (task_id,))
        row = await cur.fetchone()
        if row is None:
            return None
        cur = await conn.execute(
            "SELECT event_id, task_id, tenant_id, type, occurred_at, data, provides, requires,"
            " terminal, held_since FROM held_events WHERE task_id = %s",
            (task_id,),
        )
        held = [_held_entry(h) for h in await cur.fetchall()]
        return TaskTimeline(
            task_id,
            row["tenant_id"],
            last_seq=row["last_seq"],
            terminal_seq=row["terminal_seq"],
            provided=row["provided"],
            held=held,
        )


def _held_entry(row: dict[str, Any]) -> HeldEntry:
    entry = TimelineEntry(
        event_id=row["event_id"],
        task_id=row["task_id"],
        tenant_id=row["tenant_id"],
        type=row["type"],
        occurred_at=row["occurred_at"],
        data=row["data"],
        causality=Causality(
            provides=frozenset(row["provides"]),
            requires=frozenset(row["requires"]),
            terminal=row["terminal"],
        ),
    )
    return HeldEntry(entry, row["held_since"])


async def _save(conn: Connection, timeline: TaskTimeline) -> None:
    changes = timeline.changes
    if changes.empty:
        return
    async with conn.cursor() as cur:
        if changes.appended:
            await cur.executemany(
                "INSERT INTO timeline_events"
                " (task_id, seq, event_id, tenant_id, type, occurred_at, data)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        e.task_id,
                        e.seq,
                        e.event_id,
                        e.tenant_id,
                        e.type,
                        e.occurred_at,
                        Jsonb(e.data),
                    )
                    for e in changes.appended
                ],
            )
        if changes.released:
            await cur.execute(
                "DELETE FROM held_events WHERE event_id = ANY(%s)", (changes.released,)
            )
        if changes.newly_held:
            await cur.executemany(
                "INSERT INTO held_events (event_id, task_id, tenant_id, type, occurred_at, data,"
                " provides, requires, terminal, held_since)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
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
                    )
                    for h in changes.newly_held
                ],
            )
        if changes.late:
            await cur.executemany(
                "INSERT INTO late_events (event_id, task_id, tenant_id, type, occurred_at, data)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING",
                [
                    (e.event_id, e.task_id, e.tenant_id, e.type, e.occurred_at, Jsonb(dict(e.data)))
                    for e in changes.late
                ],
            )
        await cur.execute(
            "UPDATE timelines SET last_seq = %s, terminal_seq = %s, provided = %s,"
            " updated_at = now() WHERE task_id = %s",
            (timeline.last_seq, timeline.terminal_seq, sorted(timeline.provided), timeline.task_id),
        )
