"""SQL for the gateway's own schema: the ``api_keys`` and ``rate_limit_overrides`` (rate limits
and quotas) tables."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import AsyncConnection, sql
from psycopg_pool import PoolTimeout

from gateway.keys import (
    IssuedKey,
    KeyStoreUnavailable,
    check_tenant_name,
    issue_key,
    key_hash,
)
from gateway.rate_limits import LimitOverride, LimitOverridesUnavailable
from relay_shared.db import Database

MIGRATIONS = Path(__file__).parent / "migrations"
# 48 random bits make a prefix clash all but impossible; the UNIQUE constraint makes it harmless.
_ISSUE_ATTEMPTS = 3


@dataclass(frozen=True)
class ApiKeyRecord:
    id: uuid.UUID
    tenant_id: str
    prefix: str
    name: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


_COLUMNS = "id, tenant_id, prefix, name, created_at, expires_at, revoked_at, last_used_at"


class ApiKeys:
    """The ``api_keys`` table, through one connection (rows as dicts)."""

    def __init__(self, conn: AsyncConnection[dict[str, Any]]) -> None:
        self._conn = conn

    async def create(
        self, tenant_id: str, *, name: str | None = None, expires_at: datetime | None = None
    ) -> IssuedKey:
        """Store a new key for ``tenant_id`` (named, expiring at ``expires_at`` if given); the
        returned raw key is nowhere else."""
        check_tenant_name(tenant_id)
        for _ in range(_ISSUE_ATTEMPTS - 1):
            with contextlib.suppress(psycopg.errors.UniqueViolation):
                return await self._insert(tenant_id, issue_key(), name, expires_at)
        return await self._insert(tenant_id, issue_key(), name, expires_at)

    async def _insert(
        self, tenant_id: str, key: IssuedKey, name: str | None, expires_at: datetime | None
    ) -> IssuedKey:
        async with self._conn.transaction():  # a savepoint: a clash leaves the rest intact
            await self._conn.execute(
                "INSERT INTO api_keys (id, tenant_id, prefix, key_hash, name, expires_at)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (uuid.uuid4(), tenant_id, key.prefix, key.hash, name, expires_at),
            )
        return key

    async def tenant_for_hash(self, key_hash: str) -> str | None:
        # One round trip: find the live key and note its use, at most once a minute so a busy
        # key does not turn every request into a row update.
        cursor = await self._conn.execute(
            """
            WITH live AS (
                SELECT id, tenant_id, last_used_at FROM api_keys
                WHERE key_hash = %s AND revoked_at IS NULL
                  AND (expires_at IS NULL OR expires_at > now())
            ), touched AS (
                UPDATE api_keys SET last_used_at = now()
                FROM live
                WHERE api_keys.id = live.id
                  AND (live.last_used_at IS NULL
                       OR live.last_used_at < now() - interval '1 minute')
            )
            SELECT tenant_id FROM live
            """,
            (key_hash,),
        )
        row = await cursor.fetchone()
        return None if row is None else str(row["tenant_id"])

    async def revoke(self, prefix: str) -> bool:
        """Revoke the key with this prefix; False when there is none. Revoking twice keeps the
        first revocation time."""
        cursor = await self._conn.execute(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())"
            " WHERE prefix = %s RETURNING id",
            (prefix,),
        )
        return await cursor.fetchone() is not None

    async def records(self, tenant_id: str | None = None) -> list[ApiKeyRecord]:
        cursor = await self._conn.execute(
            f"SELECT {_COLUMNS} FROM api_keys"  # noqa: S608 - a constant column list
            " WHERE %(tenant)s::text IS NULL OR tenant_id = %(tenant)s"
            " ORDER BY created_at, prefix",
            {"tenant": tenant_id},
        )
        return [ApiKeyRecord(**row) for row in await cursor.fetchall()]


class PostgresKeyStore:
    """``KeyStore`` over the service's database pool."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def tenant_for(self, raw_key: str) -> str | None:
        try:
            async with self._database.statement() as conn:
                return await ApiKeys(conn).tenant_for_hash(key_hash(raw_key))
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise KeyStoreUnavailable(str(exc)) from exc


_OVERRIDE_COLUMNS = tuple(field.name for field in fields(LimitOverride))


class RateLimitOverrides:
    """The ``rate_limit_overrides`` table, through one connection (rows as dicts)."""

    def __init__(self, conn: AsyncConnection[dict[str, Any]]) -> None:
        self._conn = conn

    async def get(self, tenant_id: str) -> LimitOverride | None:
        cursor = await self._conn.execute(
            sql.SQL("SELECT {} FROM rate_limit_overrides WHERE tenant_id = %s").format(
                sql.SQL(", ").join(map(sql.Identifier, _OVERRIDE_COLUMNS))
            ),
            (tenant_id,),
        )
        row = await cursor.fetchone()
        return None if row is None else LimitOverride(**row)

    async def set(self, tenant_id: str, override: LimitOverride) -> LimitOverride:
        """Store the fields given in ``override`` (None leaves a stored field as it is);
        answers the whole override now stored."""
        check_tenant_name(tenant_id)
        columns = [sql.Identifier(name) for name in _OVERRIDE_COLUMNS]
        cursor = await self._conn.execute(
            sql.SQL(
                "INSERT INTO rate_limit_overrides (tenant_id, {columns})"
                " VALUES (%(tenant)s, {values})"
                " ON CONFLICT (tenant_id) DO UPDATE SET {keep}, updated_at = now()"
                " RETURNING {columns}"
            ).format(
                columns=sql.SQL(", ").join(columns),
                values=sql.SQL(", ").join(map(sql.Placeholder, _OVERRIDE_COLUMNS)),
                keep=sql.SQL(", ").join(
                    sql.SQL("{c} = coalesce(EXCLUDED.{c}, rate_limit_overrides.{c})").format(c=c)
                    for c in columns
                ),
            ),
            {"tenant": tenant_id, **asdict(override)},
        )
        row = await cursor.fetchone()
        assert row is not None  # RETURNING of an upsert
        return LimitOverride(**row)

    async def reset(self, tenant_id: str) -> bool:
        """Back to the defaults; False when the tenant had no override."""
        cursor = await self._conn.execute(
            "DELETE FROM rate_limit_overrides WHERE tenant_id = %s RETURNING tenant_id",
            (tenant_id,),
        )
        return await cursor.fetchone() is not None


class PostgresLimitOverrides:
    """``LimitOverrides`` over the service's database pool."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def override_for(self, tenant_id: str) -> LimitOverride | None:
        try:
            async with self._database.statement() as conn:
                return await RateLimitOverrides(conn).get(tenant_id)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise LimitOverridesUnavailable(str(exc)) from exc
