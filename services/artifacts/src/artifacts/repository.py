"""The ``artifacts`` schema: artifact records, plus this service's inbox and outbox rows.

A transaction (ports.ArtifactsTransaction) is one unit of work: an inbox claim, the record and
the announcement commit together or not at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection

from artifacts.models import Artifact
from artifacts.ports import ArtifactsTransaction
from relay_shared import inbox
from relay_shared.db import Database
from relay_shared.events import DomainEvent
from relay_shared.outbox import Outbox

SUBSCRIBER = "artifacts"

_COLUMNS = (
    "id, tenant_id, task_id, name, content_type, size, sha256, status, rejection_reason,"
    " staging_key, object_key, created_at"
)
_SELECT = f"SELECT {_COLUMNS} FROM artifacts"  # noqa: S608 - constant column list, no input

# A rejected record gives way to a published one of the same task (the agent re-uploaded good
# bytes under the same id); a published record never changes.
_RECORD = f"""
INSERT INTO artifacts ({_COLUMNS})
VALUES (%(id)s, %(tenant_id)s, %(task_id)s, %(name)s, %(content_type)s, %(size)s, %(sha256)s,
        %(status)s, %(rejection_reason)s, %(staging_key)s, %(object_key)s, %(created_at)s)
ON CONFLICT (id) DO UPDATE SET
    name = EXCLUDED.name, content_type = EXCLUDED.content_type, size = EXCLUDED.size,
    sha256 = EXCLUDED.sha256, status = EXCLUDED.status, rejection_reason = NULL,
    staging_key = EXCLUDED.staging_key, object_key = EXCLUDED.object_key,
    created_at = EXCLUDED.created_at, recorded_at = now()
WHERE artifacts.status = 'rejected' AND EXCLUDED.status = 'published'
  AND artifacts.tenant_id = EXCLUDED.tenant_id AND artifacts.task_id = EXCLUDED.task_id
"""  # noqa: S608 - constant column list, no input


def _artifact(row: dict[str, Any]) -> Artifact:
    return Artifact.model_validate({**row, "created_at": row["created_at"].astimezone(UTC)})


async def _select_one(
    conn: AsyncConnection[Any], where: str, params: tuple[Any, ...]
) -> Artifact | None:
    cur = await conn.execute(f"{_SELECT} WHERE {where}", params)
    row = await cur.fetchone()
    return _artifact(row) if row else None


class PostgresArtifacts:
    def __init__(self, database: Database, *, outbox: Outbox | None = None) -> None:
        self._db = database
        self._outbox = outbox or Outbox()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[ArtifactsTransaction]:
        async with self._db.transaction() as conn:
            yield _PostgresTransaction(conn, self._outbox)

    async def find(self, artifact_id: UUID) -> Artifact | None:
        async with self._db.statement() as conn:
            return await _select_one(conn, "id = %s", (artifact_id,))

    async def published_for_task(self, tenant_id: str, task_id: UUID) -> list[Artifact]:
        async with self._db.statement() as conn:
            cur = await conn.execute(
                f"{_SELECT} WHERE tenant_id = %s AND task_id = %s AND status = 'published'"
                " ORDER BY created_at, id",
                (tenant_id, task_id),
            )
            return [_artifact(row) for row in await cur.fetchall()]

    async def published(self, tenant_id: str, task_id: UUID, artifact_id: UUID) -> Artifact | None:
        async with self._db.statement() as conn:
            return await _select_one(
                conn,
                "id = %s AND tenant_id = %s AND task_id = %s AND status = 'published'",
                (artifact_id, tenant_id, task_id),
            )


class _PostgresTransaction:
    def __init__(self, conn: AsyncConnection[Any], outbox: Outbox) -> None:
        self._conn = conn
        self._outbox = outbox

    async def claim(self, event: DomainEvent) -> bool:
        return await inbox.claim(self._conn, SUBSCRIBER, event)

    async def lock_artifact(self, artifact_id: UUID) -> Artifact | None:
        # an advisory lock also covers an id that has no row yet (FOR UPDATE would not)
        await self._conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"artifact:{artifact_id}",)
        )
        return await _select_one(self._conn, "id = %s", (artifact_id,))

    async def record(self, artifact: Artifact) -> bool:
        # the status goes in as its value: psycopg would send an enum's name
        params = {**artifact.model_dump(), "status": artifact.status.value}
        cur = await self._conn.execute(_RECORD, params)
        return cur.rowcount == 1

    async def announce(self, event: DomainEvent) -> None:
        await self._outbox.add(self._conn, event)
