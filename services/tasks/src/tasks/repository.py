"""SQL for the tasks schema (tables in migrations/): the PostgreSQL ``TaskStore``."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb

from relay_shared import inbox
from relay_shared.db import Database
from relay_shared.events import DomainEvent, TaskLimits, Usage
from relay_shared.outbox import OUTBOX_INSERT, Outbox, outbox_row
from tasks.lifecycle import (
    TERMINAL_STATUSES,
    PendingQuestion,
    ProgressMark,
    TaskError,
    TaskState,
    TaskStatus,
)
from tasks.models import IdempotencyClaim, IdempotencyRecord, PagePosition, Task, TenantUsage
from tasks.ports import Claimed

_TERMINAL = sorted(TERMINAL_STATUSES)


def idempotency_lock_id(tenant_id: str, key: str) -> int:
    """The advisory lock id (a signed bigint) for one tenant's Idempotency-Key."""
    return _lock_id(f"relay-tasks-idempotency\x00{tenant_id}\x00{key}")


def quota_lock_id(tenant_id: str) -> int:
    """The advisory lock id of one tenant's quota-checked submissions."""
    return _lock_id(f"relay-tasks-quota\x00{tenant_id}")


def _lock_id(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


# Unfinished tasks (the active-task quota) and, of the tasks submitted since 00:00 UTC, their
# estimated cost and every token the model processed (the daily quotas); and the seconds left of
# the UTC day. The OR lets both indexes on (tenant_id, ...) serve it.
_TENANT_USAGE = """
WITH day AS (SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS start)
SELECT
    count(tasks.id) FILTER (WHERE tasks.status <> ALL(%(finished)s)) AS active_tasks,
    coalesce(sum(tasks.cost_usd) FILTER (WHERE tasks.created_at >= day.start), 0) AS spend_usd,
    coalesce(sum(tasks.input_tokens + tasks.output_tokens + tasks.cache_creation_input_tokens
                 + tasks.cache_read_input_tokens) FILTER (WHERE tasks.created_at >= day.start), 0)
        AS tokens,
    extract(epoch FROM day.start + interval '1 day' - now()) AS seconds_left_today
FROM day
LEFT JOIN tasks ON tasks.tenant_id = %(tenant)s
    AND (tasks.status <> ALL(%(finished)s) OR tasks.created_at >= day.start)
GROUP BY day.start
"""
_FINISHED = sorted(status.value for status in TERMINAL_STATUSES)


class PostgresTaskStore:
    def __init__(self, database: Database, *, subscriber: str = "tasks") -> None:
        self._db = database
        self._subscriber = subscriber

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresTaskTransaction]:
        async with self._db.transaction() as conn:
            yield PostgresTaskTransaction(conn, subscriber=self._subscriber)

    @asynccontextmanager
    async def reads(self) -> AsyncIterator[PostgresTaskTransaction]:
        async with self._db.statement() as conn:
            yield PostgresTaskTransaction(conn, subscriber=self._subscriber)

    async def insert_task(self, task: Task, submitted: DomainEvent) -> None:
        async with self._db.statement() as conn:
            await _insert_task(conn, task, submitted, None)


_INSERT_TASK = (
    "INSERT INTO tasks (id, tenant_id, status, prompt, model, metadata, max_turns,"
    " max_output_tokens, max_wall_seconds, max_cost_usd, max_wait_seconds, created_at, updated_at)"
    " VALUES (%(id)s, %(tenant)s, %(status)s, %(prompt)s, %(model)s, %(metadata)s, %(max_turns)s,"
    " %(max_output_tokens)s, %(max_wall_seconds)s, %(max_cost_usd)s, %(max_wait_seconds)s,"
    " %(created_at)s, %(created_at)s)"
)
_REMEMBER_KEY = (
    "INSERT INTO idempotency_keys (tenant_id, key, request_hash, task_id, expires_at)"
    " VALUES (%(tenant)s, %(key)s, %(request_hash)s, %(id)s, now() + %(ttl)s)"
    " ON CONFLICT (tenant_id, key) DO UPDATE SET request_hash = excluded.request_hash,"
    " task_id = excluded.task_id, created_at = excluded.created_at,"
    " expires_at = excluded.expires_at"
)
# A submission is one statement (one round trip): the task, the key's record and the outbox row
# are sibling writes of one WITH, atomic together; the key's foreign key is checked at its end.
_SUBMIT = f"WITH task AS ({_INSERT_TASK}) {OUTBOX_INSERT}"
_SUBMIT_WITH_KEY = f"WITH task AS ({_INSERT_TASK}), key AS ({_REMEMBER_KEY}) {OUTBOX_INSERT}"
# A lifecycle event's inbox claim and, only if it is the first, its task's row locked: one
# statement. The lock re-reads the row if another transaction changed it meanwhile (READ
# COMMITTED's recheck of a locked row), so the state is the newest committed one. One row always:
# ``first`` and the task's columns (NULL when not first, or when the tenant has no such task).
_CLAIM_LOCKING = (
    f"WITH claim AS ({inbox.CLAIM_INSERT} RETURNING 1),"  # noqa: S608 - a constant statement
    " task AS (SELECT * FROM tasks WHERE tenant_id = %(tenant)s AND id = %(id)s"
    " AND EXISTS (SELECT FROM claim) FOR UPDATE)"
    " SELECT EXISTS (SELECT FROM claim) AS first, task.* FROM (VALUES (1)) AS one (unused)"
    " LEFT JOIN task ON true"
)


async def _insert_task(
    conn: AsyncConnection[Any],
    task: Task,
    submitted: DomainEvent,
    key: IdempotencyClaim | None,
) -> None:
    limits = task.limits
    if limits is None:  # only tasks stored before budgets existed lack them
        raise ValueError(f"new task {task.id} has no limits")
    params: dict[str, Any] = outbox_row(submitted) | {
        "id": task.id,
        "tenant": task.tenant_id,
        "status": task.state.status.value,
        "prompt": task.prompt,
        "model": task.model,
        "metadata": Jsonb(dict(task.metadata)),
        "max_turns": limits.max_turns,
        "max_output_tokens": limits.max_output_tokens,
        "max_wall_seconds": limits.max_wall_seconds,
        "max_cost_usd": limits.max_cost_usd,
        "max_wait_seconds": limits.max_wait_seconds,
        "created_at": task.created_at,
    }
    if key is None:
        await conn.execute(_SUBMIT, params)
        return
    params |= {"key": key.key, "request_hash": key.request_hash, "ttl": key.ttl}
    await conn.execute(_SUBMIT_WITH_KEY, params)


class PostgresTaskTransaction:
    def __init__(self, conn: AsyncConnection[dict[str, Any]], *, subscriber: str) -> None:
        self._conn = conn
        self._subscriber = subscriber

    async def insert_task(
        self, task: Task, submitted: DomainEvent, *, key: IdempotencyClaim | None = None
    ) -> None:
        await _insert_task(self._conn, task, submitted, key)

    async def task(self, tenant_id: str, task_id: UUID) -> Task | None:
        cur = await self._conn.execute(
            "SELECT * FROM tasks WHERE tenant_id = %s AND id = %s",
            (tenant_id, task_id),
        )
        row = await cur.fetchone()
        return _task(row) if row else None

    async def tasks(
        self, tenant_id: str, *, status: TaskStatus | None, after: PagePosition | None, limit: int
    ) -> list[Task]:
        conditions = [sql.SQL("tenant_id = %s")]
        params: list[Any] = [tenant_id]
        if status is not None:
            conditions.append(sql.SQL("status = %s"))
            params.append(status.value)
        if after is not None:
            conditions.append(sql.SQL("(created_at, id) < (%s, %s)"))
            params += [after.created_at, after.id]
        query = sql.SQL(
            "SELECT * FROM tasks WHERE {} ORDER BY created_at DESC, id DESC LIMIT %s"
        ).format(sql.SQL(" AND ").join(conditions))
        cur = await self._conn.execute(query, [*params, limit])
        return [_task(row) for row in await cur.fetchall()]

    async def lock_state(self, tenant_id: str, task_id: UUID) -> TaskState | None:
        cur = await self._conn.execute(
            "SELECT * FROM tasks WHERE tenant_id = %s AND id = %s FOR UPDATE",
            (tenant_id, task_id),
        )
        row = await cur.fetchone()
        return _state(row) if row else None

    async def save_state(self, tenant_id: str, task_id: UUID, state: TaskState) -> bool:
        # The status guard repeats the state machine's rule in SQL: a terminal task never changes.
        question = state.question
        cur = await self._conn.execute(
            "UPDATE tasks SET status = %(status)s, started_at = %(started_at)s,"
            " finished_at = %(finished_at)s, input_tokens = %(input)s,"
            " output_tokens = %(output)s, cache_creation_input_tokens = %(cache_creation)s,"
            " cache_read_input_tokens = %(cache_read)s, cost_usd = %(cost)s,"
            " progress_attempt = %(attempt)s, progress_step = %(step)s,"
            " error_code = %(error_code)s, error_message = %(error_message)s,"
            " error_budget = %(error_budget)s, result_summary = %(summary)s,"
            " question_id = %(question_id)s, question = %(question)s,"
            " question_asked_at = %(question_asked_at)s, question_attempt = %(question_attempt)s,"
            " question_step = %(question_step)s, answered_question_id = %(answered)s,"
            " updated_at = now()"
            " WHERE tenant_id = %(tenant)s AND id = %(id)s AND status <> ALL(%(terminal)s)",
            {
                "status": state.status.value,
                "started_at": state.started_at,
                "finished_at": state.finished_at,
                "input": state.usage.input_tokens,
                "output": state.usage.output_tokens,
                "cache_creation": state.usage.cache_creation_input_tokens,
                "cache_read": state.usage.cache_read_input_tokens,
                "cost": state.cost_usd,
                "attempt": state.progress.attempt if state.progress else None,
                "step": state.progress.step if state.progress else None,
                "error_code": state.error.code if state.error else None,
                "error_message": state.error.message if state.error else None,
                "error_budget": state.error.budget if state.error else None,
                "summary": state.summary,
                "question_id": question.id if question else None,
                "question": question.text if question else None,
                "question_asked_at": question.asked_at if question else None,
                "question_attempt": question.mark.attempt if question else None,
                "question_step": question.mark.step if question else None,
                "answered": state.answered,
                "tenant": tenant_id,
                "id": task_id,
                "terminal": [s.value for s in _TERMINAL],
            },
        )
        return cur.rowcount == 1

    async def tenant_usage(self, tenant_id: str) -> TenantUsage:
        await self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (quota_lock_id(tenant_id),))
        cur = await self._conn.execute(_TENANT_USAGE, {"tenant": tenant_id, "finished": _FINISHED})
        row = await cur.fetchone()
        assert row is not None  # one row: the day
        return TenantUsage(
            active_tasks=int(row["active_tasks"]),
            spend_usd=float(row["spend_usd"]),
            tokens=int(row["tokens"]),
            seconds_left_today=float(row["seconds_left_today"]),
        )

    async def try_lock_idempotency_key(self, tenant_id: str, key: str) -> bool:
        cur = await self._conn.execute(
            "SELECT pg_try_advisory_xact_lock(%s) AS locked",
            (idempotency_lock_id(tenant_id, key),),
        )
        row = await cur.fetchone()
        return bool(row and row["locked"])

    async def idempotency_record(self, tenant_id: str, key: str) -> IdempotencyRecord | None:
        cur = await self._conn.execute(
            "SELECT request_hash, task_id FROM idempotency_keys"
            " WHERE tenant_id = %s AND key = %s AND expires_at > now()",
            (tenant_id, key),
        )
        row = await cur.fetchone()
        return IdempotencyRecord(row["request_hash"], row["task_id"]) if row else None

    async def claim_locking(self, event: DomainEvent) -> Claimed:
        cur = await self._conn.execute(
            _CLAIM_LOCKING,
            inbox.claim_row(self._subscriber, event)
            | {"tenant": event.metadata.tenant_id, "id": event.metadata.task_id},
        )
        row = await cur.fetchone()
        if row is None or not row["first"]:
            return Claimed(first=False)
        return Claimed(first=True, state=_state(row) if row["id"] is not None else None)

    async def publish(self, event: DomainEvent) -> None:
        await Outbox().add(self._conn, event)


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def _state(row: dict[str, Any]) -> TaskState:
    return TaskState(
        status=TaskStatus(row["status"]),
        started_at=_utc(row["started_at"]),
        finished_at=_utc(row["finished_at"]),
        usage=Usage(
            input_tokens=row["input_tokens"],
            output_tokens=row["output_tokens"],
            cache_creation_input_tokens=row["cache_creation_input_tokens"],
            cache_read_input_tokens=row["cache_read_input_tokens"],
        ),
        cost_usd=row["cost_usd"],
        progress=ProgressMark(row["progress_attempt"], row["progress_step"])
        if row["progress_attempt"] is not None
        else None,
        error=TaskError(row["error_code"], row["error_message"], row["error_budget"])
        if row["error_code"] is not None
        else None,
        summary=row["result_summary"],
        question=PendingQuestion(
            row["question_id"],
            row["question"],
            row["question_asked_at"].astimezone(UTC),
            ProgressMark(row["question_attempt"], row["question_step"]),
        )
        if row["question_id"] is not None
        else None,
        answered=row["answered_question_id"],
    )


def _limits(row: dict[str, Any]) -> TaskLimits | None:
    if row["max_turns"] is None:
        return None  # stored before budgets existed
    return TaskLimits(
        max_turns=row["max_turns"],
        max_output_tokens=row["max_output_tokens"],
        max_wall_seconds=row["max_wall_seconds"],
        max_cost_usd=row["max_cost_usd"],
        max_wait_seconds=row["max_wait_seconds"],
    )


def _task(row: dict[str, Any]) -> Task:
    return Task(
        id=row["id"],
        tenant_id=row["tenant_id"],
        prompt=row["prompt"],
        model=row["model"],
        metadata=row["metadata"],
        limits=_limits(row),
        created_at=row["created_at"].astimezone(UTC),
        updated_at=row["updated_at"].astimezone(UTC),
        state=_state(row),
    )
