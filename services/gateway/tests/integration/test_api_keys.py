"""API keys in PostgreSQL: stored hashed, found by hash, revoked for good."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from gateway.keys import InvalidTenantName
from gateway.repository import MIGRATIONS, ApiKeys, PostgresKeyStore
from relay_shared.db import Database, schema_conninfo
from relay_shared.migrations import apply_migrations

pytestmark = pytest.mark.integration


@pytest.fixture
async def database(database_url: str, db_schema: str) -> AsyncIterator[Database]:
    apply_migrations(database_url, db_schema, MIGRATIONS)
    database = Database(database_url, db_schema, max_size=2)
    await database.open()
    try:
        yield database
    finally:
        await database.close()


async def _rows(database_url: str, schema: str) -> list[dict[str, Any]]:
    conn = await AsyncConnection.connect(
        schema_conninfo(database_url, schema), row_factory=dict_row
    )
    async with conn:
        cursor = await conn.execute("SELECT row_to_json(k)::text AS text, k.* FROM api_keys k")
        return await cursor.fetchall()


async def test_a_key_is_stored_only_as_its_hash_and_prefix(
    database: Database, database_url: str, db_schema: str
) -> None:
    async with database.transaction() as conn:
        key = await ApiKeys(conn).create("acme")

    [row] = await _rows(database_url, db_schema)
    assert row["tenant_id"] == "acme"
    assert row["key_hash"] == hashlib.sha256(key.raw.encode()).hexdigest()
    assert row["prefix"] == key.raw[:12]
    secret_part = key.raw[12:]
    assert key.raw not in row["text"]
    assert secret_part not in row["text"]
    assert row["revoked_at"] is None
    assert row["last_used_at"] is None


async def test_a_key_finds_its_tenant_and_notes_its_use(
    database: Database, database_url: str, db_schema: str
) -> None:
    async with database.transaction() as conn:
        acme = await ApiKeys(conn).create("acme")
        globex = await ApiKeys(conn).create("globex")
    store = PostgresKeyStore(database)

    assert await store.tenant_for(acme.raw) == "acme"
    assert await store.tenant_for(globex.raw) == "globex"
    assert await store.tenant_for(acme.raw[:-1] + ("A" if acme.raw[-1] != "A" else "B")) is None
    used = {row["tenant_id"]: row["last_used_at"] for row in await _rows(database_url, db_schema)}
    assert used["acme"] is not None

    await store.tenant_for(acme.raw)  # within the minute: no second write
    again = {row["tenant_id"]: row["last_used_at"] for row in await _rows(database_url, db_schema)}
    assert again["acme"] == used["acme"]


async def test_a_revoked_key_finds_nothing_and_stays_revoked(
    database: Database, database_url: str, db_schema: str
) -> None:
    async with database.transaction() as conn:
        key = await ApiKeys(conn).create("acme")
    store = PostgresKeyStore(database)

    async with database.transaction() as conn:
        assert await ApiKeys(conn).revoke(key.prefix) is True
    assert await store.tenant_for(key.raw) is None
    [first] = await _rows(database_url, db_schema)

    async with database.transaction() as conn:
        assert await ApiKeys(conn).revoke(key.prefix) is True
        assert await ApiKeys(conn).revoke("rly_nothere") is False
    [second] = await _rows(database_url, db_schema)
    assert first["revoked_at"] is not None
    assert second["revoked_at"] == first["revoked_at"]


async def test_a_bad_tenant_name_stores_nothing(
    database: Database, database_url: str, db_schema: str
) -> None:
    async with database.transaction() as conn:
        with pytest.raises(InvalidTenantName):
            await ApiKeys(conn).create("Acme Corp")
    assert await _rows(database_url, db_schema) == []


async def test_the_table_refuses_a_second_row_with_the_same_hash(
    database: Database,
) -> None:
    async with database.transaction() as conn:
        key = await ApiKeys(conn).create("acme")
    with pytest.raises(psycopg.errors.UniqueViolation):
        async with database.transaction() as conn:
            await conn.execute(
                "INSERT INTO api_keys (id, tenant_id, prefix, key_hash)"
                " VALUES (gen_random_uuid(), 'globex', 'rly_other', %s)",
                (key.hash,),
            )
