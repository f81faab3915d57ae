"""Outbox relay retries and the migration runner, against real PostgreSQL and moto."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from relay_ops.stack.topology import Topology
from relay_shared.aws import aws_client
from relay_shared.db import Database
from relay_shared.events import TaskSubmitted, TaskSubmittedData
from relay_shared.migrations import KIT_INBOX, KIT_OUTBOX, apply_migrations
from relay_shared.outbox import Outbox, OutboxRelay, pending_count
from relay_shared.publisher import EventBridgePublisher
from relay_shared.settings import ServiceSettings

pytestmark = pytest.mark.integration


def _submitted(prompt: str = "p") -> TaskSubmitted:
    return TaskSubmitted.create(
        TaskSubmittedData(prompt=prompt, model="m"), tenant_id="acme", task_id=uuid.uuid4()
    )


class RefusingEvents:
    """A PutEvents that answers, refusing every entry (as EventBridge does per entry)."""

    async def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "FailedEntryCount": len(Entries),
            "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try later"}]
            * len(Entries),
        }


async def test_entries_eventbridge_refuses_are_retried_later_not_lost(
    database_url: str, db_schema: str
) -> None:
    apply_migrations(database_url, db_schema, KIT_OUTBOX)
    db = Database(database_url, db_schema)
    await db.open()
    try:
        async with db.transaction() as conn:
            await Outbox().add(conn, _submitted())
        refusing = EventBridgePublisher(RefusingEvents(), "relay-test", max_attempts=1)
        relay = OutboxRelay(db, refusing, schema=db_schema)
        assert await relay.publish_pending() == 1
        assert relay.outage is None  # EventBridge answered: the entries are at fault
        row = await _outbox_row(db)
        assert row["attempts"] == 1
        assert row["last_error"].startswith("InternalFailure")
        assert row["later"]  # backed off: not due again at once
        assert await relay.publish_pending() == 0
    finally:
        await db.close()


async def test_without_a_usable_eventbridge_rows_stay_due_for_when_it_is_back(
    database_url: str, db_schema: str, moto_endpoint: str
) -> None:
    apply_migrations(database_url, db_schema, KIT_OUTBOX)
    db = Database(database_url, db_schema)
    await db.open()
    settings = ServiceSettings(service_name="tasks", aws_endpoint_url=moto_endpoint)
    try:
        async with db.transaction() as conn:
            await Outbox().add(conn, _submitted())
        async with aws_client(settings, "events") as events:
            # a bus that does not exist (e.g. a restarted emulator): every call fails
            missing = EventBridgePublisher(events, "no-such-bus", max_attempts=1)
            relay = OutboxRelay(db, missing, schema=db_schema)
            assert await relay.publish_pending() == 1
            assert relay.outage is not None
            assert "ResourceNotFoundException" in relay.outage
            row = await _outbox_row(db)
            assert row["attempts"] == 0
            assert "no-such-bus" in row["last_error"]
            assert not row["later"]  # the relay waits, not the row: order is kept
            async with db.transaction() as conn:
                assert await pending_count(conn) == 1
    finally:
        await db.close()


async def _outbox_row(db: Database) -> dict[str, Any]:
    async with db.transaction() as conn:
        cur = await conn.execute(
            "SELECT attempts, last_error, next_attempt_at > now() AS later FROM outbox"
        )
        row = await cur.fetchone()
    assert row is not None
    return row


async def test_oversize_event_fails_the_transaction_not_the_relay(
    database_url: str, db_schema: str
) -> None:
    apply_migrations(database_url, db_schema, KIT_OUTBOX)
    db = Database(database_url, db_schema)
    await db.open()
    try:
        with pytest.raises(ValueError, match="limit"):
            async with db.transaction() as conn:
                await Outbox().add(conn, _submitted("x" * 300_000))
        async with db.transaction() as conn:
            assert await pending_count(conn) == 0
    finally:
        await db.close()


def test_migrations_apply_once_and_survive_a_stale_lock(
    database_url: str, db_schema: str, tmp_path: Path
) -> None:
    (tmp_path / "0001_things.sql").write_text("CREATE TABLE things (id int PRIMARY KEY);")
    first = apply_migrations(database_url, db_schema, KIT_OUTBOX, KIT_INBOX, tmp_path)
    assert first == [
        "kit_outbox_0001_create",
        "kit_outbox_0002_published_index",
        "kit_inbox_0001_create",
        "kit_inbox_0002_received_index",
        "0001_things",
    ]
    # a migrator killed mid-run leaves yoyo's lock row behind
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "INSERT INTO {}.yoyo_lock (locked, ctime, pid) VALUES (1, now(), 999999)"
            ).format(sql.Identifier(db_schema))
        )
    (tmp_path / "0002_more.sql").write_text("ALTER TABLE things ADD COLUMN name text;")
    second = apply_migrations(database_url, db_schema, KIT_OUTBOX, KIT_INBOX, tmp_path)
    assert second == ["0002_more"]
    assert apply_migrations(database_url, db_schema, KIT_OUTBOX, KIT_INBOX, tmp_path) == []
    with psycopg.connect(database_url) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (db_schema,),
            )
        }
    assert {"outbox", "inbox", "things"} <= tables


async def test_a_stopping_relay_publishes_what_was_committed_before_it_exits(
    database_url: str, db_schema: str, topology: Topology, moto_endpoint: str
) -> None:
    apply_migrations(database_url, db_schema, KIT_OUTBOX)
    db = Database(database_url, db_schema)
    await db.open()
    settings = ServiceSettings(
        service_name="tasks", env=topology.env, aws_endpoint_url=moto_endpoint
    )
    try:
        async with db.transaction() as conn:
            await Outbox().add(conn, _submitted())
        async with aws_client(settings, "events") as events, aws_client(settings, "sqs") as sqs:
            relay = OutboxRelay(
                db, EventBridgePublisher(events, settings.event_bus_name), schema=db_schema
            )
            relay.stop()  # stopped before it ever ran its loop
            await relay.run()
            async with db.transaction() as conn:
                assert await pending_count(conn) == 0
            got = await sqs.receive_message(
                QueueUrl=topology.queue_urls["agent"], WaitTimeSeconds=1
            )
            assert len(got.get("Messages", [])) == 1
    finally:
        await db.close()
