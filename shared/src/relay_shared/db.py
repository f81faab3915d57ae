"""PostgreSQL access: one connection pool per service, pinned to the service's own schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from psycopg import AsyncConnection
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool


def schema_conninfo(database_url: str, schema: str) -> str:
    """Connection string whose sessions see only ``schema`` (and pg_catalog)."""
    return make_conninfo(database_url, options=f"-c search_path={schema}")


class Database:
    def __init__(
        self,
        database_url: str,
        schema: str,
        *,
        max_size: int = 10,
        acquire_timeout: float = 5.0,
    ) -> None:
        self.schema = schema
        self._conninfo = schema_conninfo(database_url, schema)
        self._pool: AsyncConnectionPool[AsyncConnection[dict[str, Any]]] = AsyncConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=max_size,
            open=False,
            # how long a caller waits for a connection (e.g. while PostgreSQL is down) before
            # PoolTimeout: short enough that an API answers 503 promptly
            timeout=acquire_timeout,
            kwargs={"row_factory": dict_row},
            # A connection killed by the server (restart, pg_terminate_backend) is dropped here
            # instead of failing the next request that borrows it.
            check=AsyncConnectionPool.check_connection,
        )

    async def open(self) -> None:
        # wait=False: a service starts even while PostgreSQL is briefly away; queries retry.
        await self._pool.open(wait=False)

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection[dict[str, Any]]]:
        async with self._pool.connection() as conn, conn.transaction():
            yield conn

    async def connect(self, *, autocommit: bool = False) -> AsyncConnection[Any]:
        """A dedicated connection outside the pool (LISTEN needs one of its own)."""
        return await AsyncConnection.connect(self._conninfo, autocommit=autocommit)
