"""PostgreSQL access: one connection pool per service, pinned to the service's own schema."""

from __future__ import annotations

import contextlib
import math
import time
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from relay_shared.settings import ServiceSettings

# psycopg_pool retries a lost connection with a delay that doubles, uncapped, for this long and
# then gives up until the next borrower asks. A short window bounds the wait after PostgreSQL
# comes back to the last delay (8 s) instead of minutes.
RECONNECT_WINDOW_SECONDS = 15.0
# TCP keepalives notice a peer that vanished without a reset (a LISTEN connection would
# otherwise wait on it forever).
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10}
# A connection back in the pool for less than this is lent again without a round trip to check
# it: a busy service would otherwise pay one per transaction. One killed in that window fails
# its next transaction (an OperationalError: a 503, or a message handled again) and is dropped.
CHECK_IDLE_SECONDS = 1.0


async def execute_rows(cur: psycopg.AsyncCursor[Any], query: str, rows: Sequence[Any]) -> int:
    """Run ``query`` once per row of parameters; returns the rows it affected in all. One row,
    the usual case on the hot paths, goes as a plain execute: executemany's pipeline round
    trip costs more CPU than it saves there."""
    if len(rows) == 1:
        await cur.execute(query, rows[0])
    else:
        await cur.executemany(query, rows)
    return max(cur.rowcount, 0)


def schema_conninfo(database_url: str, schema: str, *, connect_timeout: float | None = None) -> str:
    """Connection string whose sessions see only ``schema`` (and pg_catalog).

    ``connect_timeout`` (seconds; libpq counts whole seconds, at least 2) and TCP keepalives
    are added unless the URL sets them.
    """
    given = conninfo_to_dict(database_url)
    extra: dict[str, Any] = {k: v for k, v in KEEPALIVES.items() if k not in given}
    if connect_timeout is not None and "connect_timeout" not in given:
        extra["connect_timeout"] = max(2, math.ceil(connect_timeout))
    return make_conninfo(database_url, options=f"-c search_path={schema}", **extra)


class Database:
    def __init__(
        self,
        database_url: str,
        schema: str,
        *,
        max_size: int = 10,
        acquire_timeout: float = 5.0,
        connect_timeout: float = 5.0,
    ) -> None:
        self.schema = schema
        self._conninfo = schema_conninfo(database_url, schema, connect_timeout=connect_timeout)
        self._pool: AsyncConnectionPool[AsyncConnection[dict[str, Any]]] = AsyncConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=max_size,
            open=False,
            # how long a caller waits for a connection (e.g. while PostgreSQL is down) before
            # PoolTimeout: short enough that an API answers 503 promptly
            timeout=acquire_timeout,
            reconnect_timeout=RECONNECT_WINDOW_SECONDS,
            # autocommit: a transaction is explicit (``transaction``), and a lone statement
            # (``statement``) commits by itself, without a BEGIN and a COMMIT round trip
            kwargs={"row_factory": dict_row, "autocommit": True},
            # A connection killed by the server (restart, pg_terminate_backend) while idle is
            # dropped here instead of failing the next request that borrows it.
            check=self._check_if_idle,
            reset=self._returned,
        )
        self._returned_at: weakref.WeakKeyDictionary[AsyncConnection[Any], float] = (
            weakref.WeakKeyDictionary()
        )

    async def _returned(self, conn: AsyncConnection[Any]) -> None:
        self._returned_at[conn] = time.monotonic()

    async def _check_if_idle(self, conn: AsyncConnection[Any]) -> None:
        returned = self._returned_at.get(conn)
        if returned is None or time.monotonic() - returned >= CHECK_IDLE_SECONDS:
            await AsyncConnectionPool.check_connection(conn)

    async def open(self) -> None:
        # wait=False: a service starts even while PostgreSQL is briefly away; queries retry.
        await self._pool.open(wait=False)

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection[dict[str, Any]]]:
        async with self._pool.connection() as conn, conn.transaction():
            yield conn

    @asynccontextmanager
    async def statement(self) -> AsyncIterator[AsyncConnection[dict[str, Any]]]:
        """A pooled connection for one statement, which commits on its own (atomic by itself:
        a ``WITH ... INSERT`` writing to several tables is one round trip)."""
        async with self._pool.connection() as conn:
            yield conn

    async def connect(self, *, autocommit: bool = False) -> AsyncConnection[Any]:
        """A dedicated connection outside the pool (LISTEN needs one of its own)."""
        return await AsyncConnection.connect(self._conninfo, autocommit=autocommit)

    @asynccontextmanager
    async def listen(self, channel: str) -> AsyncIterator[AsyncConnection[Any]]:
        """A dedicated connection with ``LISTEN channel`` in effect, closed on exit (quietly if
        it is already broken): read ``conn.notifies()`` on it."""
        conn = await self.connect(autocommit=True)
        try:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            yield conn
        finally:
            with contextlib.suppress(psycopg.Error, OSError):
                await conn.close()

    async def ping(self) -> None:
        """One round trip through the pool (readiness)."""
        async with self._pool.connection() as conn:
            await conn.execute("SELECT 1")


def service_database(settings: ServiceSettings) -> Database:
    """The service's pool, sized and timed by its settings (not opened yet)."""
    return Database(
        settings.database_url.get_secret_value(),
        settings.db_schema,
        max_size=settings.db_pool_max,
        acquire_timeout=settings.db_acquire_timeout,
        connect_timeout=settings.db_connect_timeout,
    )
