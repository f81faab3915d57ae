"""SQL for the agent's own schema: the ``runs`` table, written together with the outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from agent.models import RunState
from relay_shared.db import Database
from relay_shared.events import DomainEvent
from relay_shared.outbox import Outbox

# A new task starts at attempt 1; a run still 'running' (its worker died or its message came
# back) starts over as the next attempt; a finished run returns no row and is left alone.
_CLAIM = """
INSERT INTO runs (task_id, tenant_id, status, attempt, worker_id)
VALUES (%(task_id)s, %(tenant_id)s, 'running', 1, %(worker_id)s)
ON CONFLICT (task_id) DO UPDATE
    SET attempt = runs.attempt + 1, worker_id = EXCLUDED.worker_id, steps = 0,
        usage = '{}'::jsonb, started_at = now(), updated_at = now()
    WHERE runs.status = 'running'
RETURNING attempt
"""

# Only the attempt that owns the run may move it: a superseded attempt updates nothing.
_SAVE = """
UPDATE runs
SET status = %(status)s, steps = %(steps)s, usage = %(usage)s, updated_at = now(),
    finished_at = CASE WHEN %(status)s = 'running' THEN NULL ELSE now() END
WHERE task_id = %(task_id)s AND attempt = %(attempt)s AND status = 'running'
"""


class PostgresRunTransaction:
    def __init__(self, conn: AsyncConnection[Any], outbox: Outbox) -> None:
        self._conn = conn
        self._outbox = outbox

    async def claim(self, task_id: UUID, tenant_id: str, worker_id: str) -> int | None:
        cur = await self._conn.execute(
            _CLAIM, {"task_id": task_id, "tenant_id": tenant_id, "worker_id": worker_id}
        )
        row = await cur.fetchone()
        return None if row is None else int(row["attempt"])

    async def save(self, state: RunState) -> bool:
        cur = await self._conn.execute(
            _SAVE,
            {
                "task_id": state.task_id,
                "attempt": state.attempt,
                "status": state.status,
                "steps": state.steps,
                "usage": Jsonb(state.usage.model_dump()),
            },
        )
        return cur.rowcount == 1

    async def emit(self, *events: DomainEvent) -> None:
        await self._outbox.add(self._conn, *events)


class PostgresRuns:
    def __init__(self, database: Database, outbox: Outbox | None = None) -> None:
        self._db = database
        self._outbox = outbox or Outbox()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresRunTransaction]:
        async with self._db.transaction() as conn:
            yield PostgresRunTransaction(conn, self._outbox)
