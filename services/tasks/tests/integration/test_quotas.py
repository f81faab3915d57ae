"""Quotas at intake on real PostgreSQL (the whole app on moto): concurrent submits cannot both
take the last free slot, and the daily quotas count only what was submitted since 00:00 UTC."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import psycopg

from relay_devkit.testing import eventually
from tasks.repository import quota_lock_id

if TYPE_CHECKING:
    from .conftest import Headers, RunningTasks


async def waiting_for_a_lock(db: psycopg.AsyncConnection[Any]) -> int:
    await db.execute("SELECT pg_stat_clear_snapshot()")
    cur = await db.execute(
        "SELECT count(*) AS n FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row["n"])


async def test_concurrent_submits_never_exceed_the_active_task_quota(
    tasks: RunningTasks, auth: Headers, tenant: str, db: psycopg.AsyncConnection[Any]
) -> None:
    headers = auth(tenant) | {"Relay-Quota-Active-Tasks": "2"}
    racers = 5

    # Hold the tenant's quota lock so that every submit is inside its transaction, waiting,
    # before any can count: they then race for real instead of one after another.
    async with db.transaction():
        await db.execute("SELECT pg_advisory_xact_lock(%s)", (quota_lock_id(tenant),))
        answers = asyncio.gather(
            *(
                tasks.http.post("/internal/tasks", json={"prompt": f"p{i}"}, headers=headers)
                for i in range(racers)
            )
        )
        await eventually(lambda: waiting_for_a_lock(db), until=lambda n: n == racers)

    statuses = sorted(a.status_code for a in await answers)
    assert statuses == [202, 202] + [429] * (racers - 2)
    cur = await db.execute("SELECT count(*) AS n FROM tasks WHERE tenant_id = %s", (tenant,))
    assert await cur.fetchone() == {"n": 2}
    cur = await db.execute("SELECT count(*) AS n FROM outbox")
    assert await cur.fetchone() == {"n": 2}


async def test_daily_quotas_count_today_in_utc_and_finished_tasks_free_their_slot(
    tasks: RunningTasks, auth: Headers, tenant: str, db: psycopg.AsyncConnection[Any]
) -> None:
    async def submit(**quota: str) -> int:
        names = {"active": "Relay-Quota-Active-Tasks", "spend": "Relay-Quota-Daily-Spend-Usd"}
        headers = auth(tenant) | {names[k]: v for k, v in quota.items()}
        response = await tasks.http.post("/internal/tasks", json={"prompt": "p"}, headers=headers)
        return response.status_code

    assert await submit() == 202
    # yesterday's task: spent a lot, finished; today's: spent a little, still running
    await db.execute(
        "UPDATE tasks SET created_at = now() - interval '1 day', cost_usd = 5,"
        " status = 'succeeded', finished_at = now() WHERE tenant_id = %s",
        (tenant,),
    )
    assert await submit() == 202
    await db.execute(
        "UPDATE tasks SET cost_usd = 0.25, output_tokens = 100 WHERE tenant_id = %s"
        " AND status = 'queued'",
        (tenant,),
    )

    assert await submit(spend="0.3", active="2") == 202  # 0.25 today; 1 active of 2
    assert await submit(active="2") == 429  # now 2 active; the finished one does not count
    response = await tasks.http.post(
        "/internal/tasks",
        json={"prompt": "p"},
        headers=auth(tenant) | {"Relay-Quota-Daily-Spend-Usd": "0.25"},
    )
    assert response.status_code == 429
    assert response.json()["limit"] == "daily_spend"
    cur = await db.execute(
        "SELECT ceil(extract(epoch FROM date_trunc('day', now() AT TIME ZONE 'UTC')"
        " + interval '1 day' - (now() AT TIME ZONE 'UTC'))) AS left"
    )
    row = await cur.fetchone()
    assert row is not None
    assert abs(int(response.headers["retry-after"]) - int(row["left"])) <= 2
    tokens = await tasks.http.post(
        "/internal/tasks",
        json={"prompt": "p"},
        headers=auth(tenant) | {"Relay-Quota-Daily-Tokens": "100"},
    )
    assert (tokens.status_code, tokens.json()["limit"]) == (429, "daily_tokens")
