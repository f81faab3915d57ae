"""SQL for the agent's own schema: the ``runs`` table, written together with the outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import tuple_row
from psycopg.types.json import Jsonb

from agent.checkpoints import Checkpoint, Resumption
from agent.models import (
    CancelOutcome,
    Claim,
    Claimed,
    ExpiredWait,
    Finished,
    Held,
    RunFlags,
    RunState,
    RunStatus,
    StaleRun,
)
from relay_shared.db import Database
from relay_shared.events import DomainEvent, TaskSubmittedData, Usage
from relay_shared.outbox import Outbox

# A new task starts at attempt 1. A run still 'running' whose lease has expired (its worker
# died, or let it go on shutdown) is taken over as the next attempt. A run under a live lease
# or a finished one returns no row and is left alone.
_CLAIM = """
INSERT INTO runs (task_id, tenant_id, status, attempt, worker_id, lease_owner,
                  lease_expires_at, deadline_at, submitted, submitted_metadata)
VALUES (%(task_id)s, %(tenant_id)s, 'running', 1, %(worker_id)s, %(worker_id)s,
        now() + make_interval(secs => %(lease)s), now() + make_interval(secs => %(wall)s),
        %(submitted)s, %(submitted_metadata)s)
ON CONFLICT (task_id) DO UPDATE
    SET attempt = runs.attempt + 1, worker_id = EXCLUDED.worker_id,
        lease_owner = EXCLUDED.lease_owner, lease_expires_at = EXCLUDED.lease_expires_at,
        deadline_at = EXCLUDED.deadline_at, submitted = EXCLUDED.submitted,
        submitted_metadata = coalesce(EXCLUDED.submitted_metadata, runs.submitted_metadata),
        steps = 0,
        usage = '{}'::jsonb, cost_usd = 0, started_at = now(), updated_at = now()
    WHERE runs.status = 'running'
      AND (runs.lease_expires_at IS NULL OR runs.lease_expires_at <= now())
RETURNING attempt, checkpoint, answer, submitted
"""

# An answer resumes the run that waits on its question, as the next attempt; a resumed attempt
# whose worker died (its lease expired) is resumed again by a redelivery of the same answer. The
# answer is kept with the run: every resumption of it uses the first one stored.
_RESUME = """
UPDATE runs
SET status = 'running', attempt = attempt + 1, worker_id = %(worker_id)s,
    lease_owner = %(worker_id)s, lease_expires_at = now() + make_interval(secs => %(lease)s),
    deadline_at = now() + make_interval(secs => coalesce(
        (submitted -> 'limits' ->> 'max_wall_seconds')::float, %(wall)s)),
    answer = coalesce(answer, %(answer)s), wait_deadline_at = NULL,
    started_at = now(), updated_at = now()
WHERE task_id = %(task_id)s AND question_id = %(question_id)s AND checkpoint IS NOT NULL
  AND (status = 'waiting'
       OR (status = 'running' AND answer IS NOT NULL
           AND (lease_expires_at IS NULL OR lease_expires_at <= now())))
RETURNING attempt, checkpoint, answer, submitted
"""

_NOT_RESUMED = """
SELECT status, question_id = %(question_id)s AND answer IS NOT NULL AS resumed,
       greatest(extract(epoch FROM greatest(lease_expires_at, deadline_at) - now()), 0)::float
           AS busy_seconds
FROM runs WHERE task_id = %(task_id)s
"""

# The attempt that asked stops here: no lease, no worker; the checkpoint and the workspace's
# files are what the resumption goes on from.
_WAIT = """
UPDATE runs
SET status = 'waiting', checkpoint = %(checkpoint)s, question_id = %(question_id)s,
    wait_deadline_at = now() + make_interval(secs => %(wait)s), answer = NULL,
    lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
WHERE task_id = %(task_id)s AND attempt = %(attempt)s AND status = 'running'
"""

_FILES = "SELECT path, content FROM run_files WHERE task_id = %s ORDER BY path"
_FORGET_FILES = "DELETE FROM run_files WHERE task_id = %s"
_SAVE_FILE = "INSERT INTO run_files (task_id, path, content) VALUES (%s, %s, %s)"

# Runs that waited longer than their max_wait_seconds; taken once (SKIP LOCKED) and failed.
_EXPIRE_WAITS = """
UPDATE runs SET status = 'failed', finished_at = now(), updated_at = now(), checkpoint = NULL
FROM (SELECT task_id, checkpoint AS saved FROM runs
      WHERE status = 'waiting' AND wait_deadline_at <= now()
      ORDER BY wait_deadline_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED) AS expired
WHERE runs.task_id = expired.task_id
RETURNING runs.task_id, tenant_id, attempt, steps, usage, cost_usd, submitted_metadata,
          expired.saved AS checkpoint
"""

_NOT_CLAIMED = """
SELECT status,
       greatest(extract(epoch FROM greatest(lease_expires_at, deadline_at) - now()), 0)::float
           AS busy_seconds
FROM runs WHERE task_id = %(task_id)s
"""

# Only the attempt that owns the run may move it: a superseded attempt updates nothing.
_SAVE = """
UPDATE runs
SET status = %(status)s, steps = %(steps)s, usage = %(usage)s, cost_usd = %(cost_usd)s,
    updated_at = now(),
    finished_at = CASE WHEN %(status)s = 'running' THEN NULL ELSE now() END,
    checkpoint = CASE WHEN %(status)s = 'running' THEN checkpoint END
WHERE task_id = %(task_id)s AND attempt = %(attempt)s AND status = 'running'
RETURNING cancel_requested_at IS NOT NULL AS cancel_requested
"""

_RENEW_LEASE = """
UPDATE runs SET lease_expires_at = now() + make_interval(secs => %(lease)s)
WHERE task_id = %(task_id)s AND attempt = %(attempt)s AND lease_owner = %(owner)s
  AND status = 'running'
RETURNING cancel_requested_at IS NOT NULL AS cancel_requested
"""

# Expired at once: the redelivered message is claimed without waiting out the lease.
_RELEASE_LEASE = """
UPDATE runs SET lease_expires_at = now()
WHERE task_id = %(task_id)s AND attempt = %(attempt)s AND lease_owner = %(owner)s
  AND status = 'running'
"""

_CANCEL_BEFORE_START = """
INSERT INTO runs (task_id, tenant_id, status, attempt, cancel_requested_at, cancel_reason,
                  finished_at)
VALUES (%(task_id)s, %(tenant_id)s, 'cancelled', 0, now(), %(reason)s, now())
ON CONFLICT (task_id) DO NOTHING
RETURNING attempt
"""

# Repeated and late requests change nothing: the first one on a running run sets the flag.
_FLAG_CANCEL = """
UPDATE runs SET cancel_requested_at = now(), cancel_reason = %(reason)s, updated_at = now()
WHERE task_id = %(task_id)s AND tenant_id = %(tenant_id)s AND status IN ('running', 'waiting')
  AND cancel_requested_at IS NULL
RETURNING attempt, steps, usage, cost_usd, status = 'waiting' AS waiting, checkpoint,
          lease_expires_at IS NULL OR lease_expires_at <= now() AS orphaned
"""

_CANCEL_ORPHAN = """
UPDATE runs SET status = 'cancelled', finished_at = now(), updated_at = now(), checkpoint = NULL
WHERE task_id = %(task_id)s
"""

# Runs whose holder stopped renewing its lease more than a grace period ago: its worker died
# (or cannot reach the database), and the redelivery that would re-run it has not come.
_STALE = """
SELECT task_id, tenant_id, attempt, submitted, submitted_metadata FROM runs
WHERE status = 'running' AND submitted IS NOT NULL
  AND lease_expires_at < now() - make_interval(secs => %(grace)s)
ORDER BY lease_expires_at
LIMIT %(limit)s
"""

# Only while still stale: a worker that took the run over in the meantime keeps it.
_ABANDON = """
UPDATE runs SET status = 'failed', finished_at = now(), updated_at = now(), checkpoint = NULL
WHERE task_id = %(task_id)s AND status = 'running'
  AND lease_expires_at < now() - make_interval(secs => %(grace)s)
RETURNING attempt, steps, usage, cost_usd
"""

_CANCEL_REQUESTED_AMONG = """
SELECT task_id FROM runs
WHERE task_id = ANY(%s) AND status = 'running' AND cancel_requested_at IS NOT NULL
"""


def cancel_channel(schema: str) -> str:
    """The NOTIFY channel on which cancel requests reach every agent process."""
    return f"relay_cancel_{schema}"


def _flags(row: Mapping[str, Any] | None) -> RunFlags | None:
    return None if row is None else RunFlags(cancel_requested=bool(row["cancel_requested"]))


def _totals(row: Mapping[str, Any], task_id: UUID, status: RunStatus) -> RunState:
    return RunState(
        task_id,
        int(row["attempt"]),
        status,
        int(row["steps"]),
        Usage.model_validate(row["usage"]),
        float(row["cost_usd"]),
    )


def _artifact_ids(checkpoint: Mapping[str, Any] | None) -> tuple[UUID, ...]:
    if checkpoint is None:
        return ()
    return tuple(Checkpoint.model_validate(checkpoint).artifact_ids)


class PostgresRunTransaction:
    def __init__(self, conn: AsyncConnection[Any], outbox: Outbox, channel: str) -> None:
        self._conn = conn
        self._outbox = outbox
        self._channel = channel

    async def claim(
        self,
        task_id: UUID,
        tenant_id: str,
        *,
        worker_id: str,
        lease_seconds: float,
        wall_seconds: float,
        submitted: Mapping[str, Any],
        submitted_metadata: Mapping[str, Any] | None = None,
    ) -> Claim:
        cur = await self._conn.execute(
            _CLAIM,
            {
                "task_id": task_id,
                "tenant_id": tenant_id,
                "worker_id": worker_id,
                "lease": lease_seconds,
                "wall": wall_seconds,
                "submitted": Jsonb(dict(submitted)),
                "submitted_metadata": None
                if submitted_metadata is None
                else Jsonb(dict(submitted_metadata)),
            },
        )
        row = await cur.fetchone()
        if row is not None:
            return await self._claimed(task_id, row)
        cur = await self._conn.execute(_NOT_CLAIMED, {"task_id": task_id})
        row = await cur.fetchone()
        if row is None:  # pragma: no cover - the INSERT above conflicted with this very row
            raise LookupError(f"run {task_id} vanished while being claimed")
        if row["status"] == "running":
            return Held(float(row["busy_seconds"]))
        return Finished(row["status"])

    async def resume(
        self,
        task_id: UUID,
        question_id: UUID,
        answer: str,
        *,
        worker_id: str,
        lease_seconds: float,
        wall_seconds: float,
    ) -> Claim:
        params = {
            "task_id": task_id,
            "question_id": question_id,
            "answer": answer,
            "worker_id": worker_id,
            "lease": lease_seconds,
            "wall": wall_seconds,
        }
        cur = await self._conn.execute(_RESUME, params)
        row = await cur.fetchone()
        if row is not None:
            return await self._claimed(task_id, row)
        cur = await self._conn.execute(_NOT_RESUMED, params)
        row = await cur.fetchone()
        if row is None:
            raise LookupError(f"no run {task_id} to resume")  # an answer precedes no question
        if row["status"] == "running" and row["resumed"]:
            return Held(float(row["busy_seconds"]))  # resumed by another worker, which lives
        return Finished(row["status"])  # ended, or waits on a newer question

    async def _claimed(self, task_id: UUID, row: Mapping[str, Any]) -> Claimed:
        if row["checkpoint"] is None or row["answer"] is None:
            return Claimed(int(row["attempt"]))
        cur = await self._conn.execute(_FILES, (task_id,))
        files = {r["path"]: bytes(r["content"]) for r in await cur.fetchall()}
        resumption = Resumption(
            checkpoint=Checkpoint.model_validate(row["checkpoint"]),
            answer=row["answer"],
            files=files,
            submitted=TaskSubmittedData.model_validate(row["submitted"]),
        )
        return Claimed(int(row["attempt"]), resumption)

    async def wait(
        self, state: RunState, checkpoint: Checkpoint, files: Mapping[str, bytes], *, seconds: float
    ) -> bool:
        cur = await self._conn.execute(
            _WAIT,
            {
                "task_id": state.task_id,
                "attempt": state.attempt,
                "checkpoint": Jsonb(checkpoint.model_dump(mode="json")),
                "question_id": checkpoint.question.id,
                "wait": seconds,
            },
        )
        if cur.rowcount != 1:
            return False
        await self._conn.execute(_FORGET_FILES, (state.task_id,))
        if files:
            async with self._conn.cursor() as many:
                await many.executemany(
                    _SAVE_FILE, [(state.task_id, path, data) for path, data in files.items()]
                )
        return True

    async def expire_waits(self, *, limit: int) -> list[ExpiredWait]:
        cur = await self._conn.execute(_EXPIRE_WAITS, {"limit": limit})
        expired = [
            ExpiredWait(
                run=_totals(row, row["task_id"], "failed"),
                tenant_id=row["tenant_id"],
                artifact_ids=_artifact_ids(row["checkpoint"]),
                submitted_metadata=row["submitted_metadata"],
            )
            for row in await cur.fetchall()
        ]
        for wait in expired:
            await self._conn.execute(_FORGET_FILES, (wait.run.task_id,))
        return expired

    async def save(self, state: RunState) -> RunFlags | None:
        cur = await self._conn.execute(
            _SAVE,
            {
                "task_id": state.task_id,
                "attempt": state.attempt,
                "status": state.status,
                "steps": state.steps,
                "usage": Jsonb(state.usage.model_dump()),
                "cost_usd": state.cost_usd,
            },
        )
        flags = _flags(await cur.fetchone())
        if flags is not None and state.status != "running":
            await self._conn.execute(_FORGET_FILES, (state.task_id,))
        return flags

    async def renew_lease(
        self, task_id: UUID, attempt: int, owner: str, lease_seconds: float
    ) -> RunFlags | None:
        cur = await self._conn.execute(
            _RENEW_LEASE,
            {"task_id": task_id, "attempt": attempt, "owner": owner, "lease": lease_seconds},
        )
        return _flags(await cur.fetchone())

    async def release_lease(self, task_id: UUID, attempt: int, owner: str) -> None:
        await self._conn.execute(
            _RELEASE_LEASE, {"task_id": task_id, "attempt": attempt, "owner": owner}
        )

    async def abandon(self, task_id: UUID, *, grace_seconds: float) -> RunState | None:
        cur = await self._conn.execute(_ABANDON, {"task_id": task_id, "grace": grace_seconds})
        row = await cur.fetchone()
        if row is None:
            return None
        await self._conn.execute(_FORGET_FILES, (task_id,))
        return _totals(row, task_id, "failed")

    async def cancel_reason(self, task_id: UUID) -> str | None:
        cur = await self._conn.execute(
            "SELECT cancel_reason FROM runs WHERE task_id = %s", (task_id,)
        )
        row = await cur.fetchone()
        return None if row is None else row["cancel_reason"]

    async def request_cancel(
        self, task_id: UUID, tenant_id: str, reason: str | None
    ) -> CancelOutcome:
        params = {"task_id": task_id, "tenant_id": tenant_id, "reason": reason}
        cur = await self._conn.execute(_CANCEL_BEFORE_START, params)
        if await cur.fetchone() is not None:
            return CancelOutcome("before_start")
        cur = await self._conn.execute(_FLAG_CANCEL, params)
        row = await cur.fetchone()
        if row is None:
            return CancelOutcome("ignored")
        if row["waiting"] or row["orphaned"]:
            await self._conn.execute(_CANCEL_ORPHAN, params)
            await self._conn.execute(_FORGET_FILES, (task_id,))
            run = _totals(row, task_id, "cancelled")
            if row["waiting"]:
                return CancelOutcome("waiting", run, _artifact_ids(row["checkpoint"]))
            return CancelOutcome("orphaned", run)
        # Delivered on commit, to every agent process listening; the runner stops the attempt.
        await self._conn.execute("SELECT pg_notify(%s, %s)", (self._channel, str(task_id)))
        return CancelOutcome("signalled")

    async def emit(self, *events: DomainEvent) -> None:
        await self._outbox.add(self._conn, *events)


class PostgresRuns:
    def __init__(self, database: Database, outbox: Outbox | None = None) -> None:
        self._db = database
        self._outbox = outbox or Outbox()
        self.channel = cancel_channel(database.schema)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresRunTransaction]:
        async with self._db.transaction() as conn:
            yield PostgresRunTransaction(conn, self._outbox, self.channel)

    async def stale(self, *, grace_seconds: float, limit: int) -> list[StaleRun]:
        async with self._db.statement() as conn:
            cur = await conn.execute(_STALE, {"grace": grace_seconds, "limit": limit})
            rows = await cur.fetchall()
        return [
            StaleRun(
                task_id=row["task_id"],
                tenant_id=row["tenant_id"],
                attempt=int(row["attempt"]),
                submitted=row["submitted"],
                submitted_metadata=row["submitted_metadata"],
            )
            for row in rows
        ]


async def cancel_requested_among(
    conn: AsyncConnection[Any], task_ids: Sequence[UUID]
) -> list[UUID]:
    """Which of these running tasks have a cancel request (for a listener that was away)."""
    if not task_ids:
        return []
    async with conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute(_CANCEL_REQUESTED_AMONG, (list(task_ids),))
        return [row[0] for row in await cur.fetchall()]
