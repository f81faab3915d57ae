"""Housekeeping against real PostgreSQL: old published outbox rows and old inbox rows go, in
batches; nothing unpublished or recent is touched."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from psycopg import sql

from relay_shared.db import Database
from relay_shared.housekeeping import Housekeeping
from relay_shared.migrations import KIT_INBOX, KIT_OUTBOX, apply_migrations

pytestmark = pytest.mark.integration


async def _outbox_row(db: Database, *, created_ago: str, published_ago: str | None) -> str:
    event_id = str(uuid.uuid4())
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO outbox (event_id, source, detail_type, detail, created_at, published_at)"
            " VALUES (%s, 'relay.tasks', 'task.submitted', '{}',"
            " now() - %s::interval, now() - %s::interval)",
            (event_id, created_ago, published_ago),
        )
    return event_id


async def _inbox_row(db: Database, *, received_ago: str) -> str:
    event_id = str(uuid.uuid4())
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO inbox (subscriber, event_id, event_type, received_at)"
            " VALUES ('tasks', %s, 'task.started', now() - %s::interval)",
            (event_id, received_ago),
        )
    return event_id


async def _ids(db: Database, table: str) -> set[str]:
    async with db.transaction() as conn:
        cur = await conn.execute(
            sql.SQL("SELECT event_id::text AS id FROM {}").format(sql.Identifier(table))
        )
        rows: list[dict[str, Any]] = await cur.fetchall()
    return {row["id"] for row in rows}


async def test_only_what_is_past_its_retention_is_deleted(
    database_url: str, db_schema: str
) -> None:
    apply_migrations(database_url, db_schema, KIT_OUTBOX, KIT_INBOX)
    db = Database(database_url, db_schema)
    await db.open()
    try:
        old_published = [
            await _outbox_row(db, created_ago="30 hours", published_ago="25 hours")
            for _ in range(5)
        ]
        recent = await _outbox_row(db, created_ago="2 hours", published_ago="1 hour")
        never_published = await _outbox_row(db, created_ago="30 hours", published_ago=None)
        old_inbox = [await _inbox_row(db, received_ago="8 days") for _ in range(3)]
        fresh_inbox = await _inbox_row(db, received_ago="1 day")

        keeper = Housekeeping(
            db,
            outbox_retention=timedelta(hours=24),
            inbox_retention=timedelta(days=7),
            batch_size=2,  # several batches, each its own short transaction
        )
        swept = await keeper.sweep()

        assert (swept.outbox_deleted, swept.inbox_deleted) == (len(old_published), len(old_inbox))
        assert await _ids(db, "outbox") == {recent, never_published}
        assert await _ids(db, "inbox") == {fresh_inbox}
        assert swept.lag is not None
        assert swept.lag.unpublished == 1
        assert swept.lag.oldest_seconds is not None
        assert swept.lag.oldest_seconds > 29 * 3600
        assert (await keeper.sweep()).outbox_deleted == 0
    finally:
        await db.close()


async def test_a_service_without_an_inbox_cleans_only_its_outbox(
    database_url: str, db_schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    apply_migrations(database_url, db_schema, KIT_OUTBOX)  # no inbox table at all
    db = Database(database_url, db_schema)
    await db.open()
    try:
        await _outbox_row(db, created_ago="2 days", published_ago="2 days")
        keeper = Housekeeping(
            db, outbox_retention=timedelta(hours=24), inbox_retention=None, lag_warn_seconds=60
        )
        swept = await keeper.sweep()
        assert (swept.outbox_deleted, swept.inbox_deleted) == (1, 0)
        assert not any("outbox lag" in r.message for r in caplog.records)
        await _outbox_row(db, created_ago="5 minutes", published_ago=None)
        await keeper.sweep()
        assert any("outbox lag: 1 unpublished" in r.message for r in caplog.records)
    finally:
        await db.close()
