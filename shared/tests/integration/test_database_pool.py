"""The pool checks a connection before lending it only when it sat idle: one killed while idle
is replaced unnoticed, one lent again at once costs no round trip (and, killed in that window,
fails one transaction and is dropped)."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

from relay_shared.db import CHECK_IDLE_SECONDS, Database

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _terminate(database_url: str, pid: int) -> None:
    """Terminate the backend and wait until it is gone (pg_terminate_backend only signals)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        for _ in range(500):
            gone = conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,))
            if gone.fetchone() is None:
                return
            time.sleep(0.01)
    raise AssertionError(f"backend {pid} still there")


async def _backend(database: Database) -> int:
    async with database.transaction() as conn:
        row = await (await conn.execute("SELECT pg_backend_pid() AS pid")).fetchone()
        assert row is not None
        return int(row["pid"])


async def test_an_idle_connection_killed_is_replaced_a_busy_one_is_not_checked(
    database_url: str, db_schema: str
) -> None:
    database = Database(database_url, db_schema, max_size=1)
    await database.open()
    try:
        first = await _backend(database)
        assert await _backend(database) == first  # the same connection, lent again

        _terminate(database_url, first)
        await asyncio.sleep(CHECK_IDLE_SECONDS + 0.1)
        second = await _backend(database)  # checked before lending: replaced, no error
        assert second != first

        _terminate(database_url, second)  # and lent again at once: not checked
        with pytest.raises(psycopg.OperationalError):
            await _backend(database)
        assert await _backend(database) not in {first, second}  # the broken one was dropped
    finally:
        await database.close()
