"""Cancel requests, effective limits, cost and budget on real PostgreSQL (the whole app on moto)."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg
import pytest

from relay_devkit.testing import eventually
from relay_shared.db import Database
from relay_shared.events import (
    DomainEvent,
    TaskFailed,
    TaskFailedData,
    TaskProgressed,
    TaskProgressedData,
    TaskStarted,
    TaskStartedData,
    TaskSucceeded,
    TaskSucceededData,
    Usage,
)
from tasks.repository import PostgresTaskStore
from tasks.service import TaskLifecycle

if TYPE_CHECKING:
    from conftest import Headers, RunningTasks

pytestmark = pytest.mark.integration


async def submit(tasks: RunningTasks, headers: dict[str, str], body: object) -> dict[str, Any]:
    response = await tasks.http.post("/internal/tasks", json=body, headers=headers)
    assert response.status_code == 202, response.text
    task: dict[str, Any] = response.json()
    return task


async def cancel_rows(db: psycopg.AsyncConnection[Any]) -> list[dict[str, Any]]:
    cur = await db.execute(
        "SELECT detail FROM outbox WHERE detail_type = 'task.cancel_requested' ORDER BY id"
    )
    return await cur.fetchall()


async def record(database_url: str, db_schema: str, *events: DomainEvent) -> None:
    """Apply agent events as the consumer would, without waiting on the bus."""
    database = Database(database_url, db_schema)
    await database.open()
    try:
        lifecycle = TaskLifecycle(PostgresTaskStore(database))
        for event in events:
            await lifecycle.record(event)
    finally:
        await database.close()


async def test_effective_limits_are_stored_in_their_columns(
    tasks: RunningTasks, auth: Headers, tenant: str, db: psycopg.AsyncConnection[Any]
) -> None:
    task = await submit(
        tasks,
        auth(tenant),
        {"prompt": "hi", "limits": {"max_wall_seconds": 90.5, "max_cost_usd": 3}},
    )

    cur = await db.execute(
        "SELECT max_turns, max_output_tokens, max_wall_seconds, max_cost_usd, cost_usd FROM tasks"
    )
    assert await cur.fetchone() == {
        "max_turns": 50,
        "max_output_tokens": 32000,
        "max_wall_seconds": 90.5,
        "max_cost_usd": 3.0,
        "cost_usd": 0.0,
    }
    fetched = await tasks.http.get(f"/internal/tasks/{task['id']}", headers=auth(tenant))
    assert fetched.json()["limits"] == {
        "max_turns": 50,
        "max_output_tokens": 32000,
        "max_wall_seconds": 90.5,
        "max_cost_usd": 3.0,
        "max_wait_seconds": 86400.0,
    }


async def test_a_task_stored_before_budgets_shows_null_limits(
    tasks: RunningTasks, auth: Headers, tenant: str, db: psycopg.AsyncConnection[Any]
) -> None:
    task_id = uuid.uuid4()
    # as migration 0002 leaves a row written before it
    await db.execute(
        "INSERT INTO tasks (id, tenant_id, status, prompt, model)"
        " VALUES (%s, %s, 'queued', 'p', 'm')",
        (task_id, tenant),
    )

    task = (await tasks.http.get(f"/internal/tasks/{task_id}", headers=auth(tenant))).json()

    assert task["limits"] is None
    assert task["usage"]["cost_usd"] == 0.0


async def test_cost_and_budget_are_kept_and_never_move_backwards(
    tasks: RunningTasks,
    auth: Headers,
    tenant: str,
    db: psycopg.AsyncConnection[Any],
    database_url: str,
    db_schema: str,
) -> None:
    task_id = UUID((await submit(tasks, auth(tenant), {"prompt": "hi"}))["id"])

    def progressed(step: int, cost: float) -> TaskProgressed:
        return TaskProgressed.create(
            TaskProgressedData(
                attempt=1, step=step, message="m", usage=Usage(output_tokens=step), cost_usd=cost
            ),
            tenant_id=tenant,
            task_id=task_id,
        )

    step_2 = progressed(2, 0.2)
    await record(database_url, db_schema, step_2, step_2, progressed(1, 0.1))
    cur = await db.execute("SELECT cost_usd, output_tokens FROM tasks")
    assert await cur.fetchone() == {"cost_usd": 0.2, "output_tokens": 2}

    failed = TaskFailed.create(
        TaskFailedData(
            attempt=1,
            usage=Usage(output_tokens=4),
            cost_usd=0.25,
            code="budget_exceeded",
            message="the task used its 2 turns",
            budget="max_turns",
        ),
        tenant_id=tenant,
        task_id=task_id,
    )
    await record(database_url, db_schema, failed, progressed(3, 5.0))

    task = (await tasks.http.get(f"/internal/tasks/{task_id}", headers=auth(tenant))).json()
    assert task["status"] == "failed"
    assert (task["usage"]["output_tokens"], task["usage"]["cost_usd"]) == (4, 0.25)
    assert task["error"] == {
        "code": "budget_exceeded",
        "message": "the task used its 2 turns",
        "budget": "max_turns",
    }


async def test_cancel_moves_the_task_to_cancelling_and_publishes_one_request(
    tasks: RunningTasks, auth: Headers, tenant: str, db: psycopg.AsyncConnection[Any]
) -> None:
    task_id = (await submit(tasks, auth(tenant), {"prompt": "hi"}))["id"]
    url = f"/internal/tasks/{task_id}/cancel"

    first = await tasks.http.post(url, json={"reason": "wrong prompt"}, headers=auth(tenant))
    again = await tasks.http.post(url, headers=auth(tenant))

    assert (first.status_code, again.status_code) == (202, 202)
    assert first.json()["status"] == again.json()["status"] == "cancelling"
    cur = await db.execute("SELECT status FROM tasks")
    assert await cur.fetchone() == {"status": "cancelling"}
    [row] = await cancel_rows(db)
    assert row["detail"]["metadata"]["task_id"] == task_id
    assert row["detail"]["metadata"]["tenant_id"] == tenant
    assert row["detail"]["data"] == {"reason": "wrong prompt"}

    async def published() -> list[dict[str, Any]]:
        cur = await db.execute(
            "SELECT published_at FROM outbox WHERE detail_type = 'task.cancel_requested'"
        )
        return await cur.fetchall()

    await eventually(published, until=lambda rows: rows[0]["published_at"] is not None)


async def test_concurrent_cancels_publish_one_request(
    tasks: RunningTasks, auth: Headers, tenant: str, db: psycopg.AsyncConnection[Any]
) -> None:
    task_id = (await submit(tasks, auth(tenant), {"prompt": "hi"}))["id"]
    racers = 5

    async def waiting_for_a_lock() -> int:
        # inside a transaction the activity view is a snapshot taken once unless cleared
        await db.execute("SELECT pg_stat_clear_snapshot()")
        cur = await db.execute(
            "SELECT count(*) AS n FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        row = await cur.fetchone()
        return int(row["n"])

    # Hold the row so that every request is inside its transaction before any can finish: they
    # then race for real instead of running one after another.
    async with db.transaction():
        await db.execute("SELECT 1 FROM tasks WHERE id = %s FOR UPDATE", (task_id,))
        answers = asyncio.gather(
            *(
                tasks.http.post(f"/internal/tasks/{task_id}/cancel", headers=auth(tenant))
                for _ in range(racers)
            )
        )
        await eventually(waiting_for_a_lock, until=lambda n: n == racers)

    assert [a.status_code for a in await answers] == [202] * racers
    assert len(await cancel_rows(db)) == 1
    cur = await db.execute("SELECT status FROM tasks")
    assert await cur.fetchone() == {"status": "cancelling"}


async def test_cancel_after_the_end_is_409_and_for_another_tenant_404(
    tasks: RunningTasks,
    auth: Headers,
    tenant: str,
    db: psycopg.AsyncConnection[Any],
    database_url: str,
    db_schema: str,
) -> None:
    task_id = (await submit(tasks, auth(tenant), {"prompt": "hi"}))["id"]
    url = f"/internal/tasks/{task_id}/cancel"

    other = await tasks.http.post(url, headers=auth("someone-else"))
    assert other.status_code == 404

    await record(
        database_url,
        db_schema,
        TaskStarted.create(
            TaskStartedData(attempt=1, worker_id="w"), tenant_id=tenant, task_id=UUID(task_id)
        ),
        TaskSucceeded.create(
            TaskSucceededData(attempt=1, summary="done"), tenant_id=tenant, task_id=UUID(task_id)
        ),
    )
    finished = await tasks.http.post(url, headers=auth(tenant))

    assert finished.status_code == 409
    assert finished.json()["task_status"] == "succeeded"
    cur = await db.execute("SELECT status FROM tasks")
    assert await cur.fetchone() == {"status": "succeeded"}
    assert await cancel_rows(db) == []
