"""The internal API against real PostgreSQL (and the whole app running on moto server)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg
import pytest

from relay_shared.db import Database
from relay_shared.events import TaskStarted, TaskStartedData
from tasks.repository import PostgresTaskStore, idempotency_lock_id
from tasks.service import TaskLifecycle

if TYPE_CHECKING:
    from conftest import Headers, RunningTasks

pytestmark = pytest.mark.integration


async def count(db: psycopg.AsyncConnection[Any], table: str) -> int:
    cur = await db.execute(f"SELECT count(*) AS n FROM {table}")
    row = await cur.fetchone()
    return int(row["n"])


async def test_submit_stores_the_task_and_its_outbox_row_together(
    tasks: RunningTasks, auth: Headers, tenant: str, db: psycopg.AsyncConnection[Any]
) -> None:
    response = await tasks.http.post(
        "/internal/tasks", json={"prompt": "hello", "metadata": {"k": "v"}}, headers=auth(tenant)
    )
    assert response.status_code == 202
    task = response.json()
    assert response.headers["location"] == f"/v1/tasks/{task['id']}"

    cur = await db.execute("SELECT * FROM tasks")
    [stored] = await cur.fetchall()
    assert (str(stored["id"]), stored["tenant_id"], stored["status"]) == (
        task["id"],
        tenant,
        "queued",
    )
    cur = await db.execute("SELECT source, detail_type, detail FROM outbox")
    [outbox] = await cur.fetchall()
    assert (outbox["source"], outbox["detail_type"]) == ("relay.tasks", "task.submitted")
    assert outbox["detail"]["metadata"]["task_id"] == task["id"]
    assert outbox["detail"]["metadata"]["tenant_id"] == tenant
    assert outbox["detail"]["data"] == {
        "prompt": "hello",
        "model": "claude-sonnet-4-5",
        "metadata": {"k": "v"},
        "limits": {
            "max_turns": 50,
            "max_output_tokens": 32000,
            "max_wall_seconds": 1800.0,
            "max_cost_usd": None,
            "max_wait_seconds": 86400.0,
        },
    }
    assert task["limits"] == outbox["detail"]["data"]["limits"]
    fetched = await tasks.http.get(f"/internal/tasks/{task['id']}", headers=auth(tenant))
    assert fetched.json() == task


async def test_a_task_whose_event_cannot_be_written_is_not_stored_either(
    tasks: RunningTasks, auth: Headers, tenant: str, db: psycopg.AsyncConnection[Any]
) -> None:
    # The task row is inserted first; the outbox then refuses the oversized event, and the
    # transaction must take the task row back with it.
    response = await tasks.http.post(
        "/internal/tasks", json={"prompt": "x" * 270_000}, headers=auth(tenant)
    )
    assert response.status_code == 422
    assert response.json()["title"] == "Task too large"
    assert (await count(db, "tasks"), await count(db, "outbox")) == (0, 0)


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        ({"prompt": " "}, {}),
        ({"prompt": "x", "metadata": {"k": 1}}, {}),
        ({"prompt": "x", "extra": True}, {}),
        ({"prompt": "x"}, {"Idempotency-Key": "k" * 256}),
        ({"prompt": "x", "model": "claude-instant"}, {"Idempotency-Key": "k"}),
        ({"prompt": "x", "limits": {"max_wall_seconds": 86400}}, {"Idempotency-Key": "k"}),
    ],
)
async def test_client_mistakes_are_422_and_create_nothing(
    tasks: RunningTasks,
    auth: Headers,
    tenant: str,
    db: psycopg.AsyncConnection[Any],
    body: object,
    headers: dict[str, str],
) -> None:
    response = await tasks.http.post(
        "/internal/tasks", json=body, headers={**auth(tenant), **headers}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    for table in ("tasks", "outbox", "idempotency_keys"):
        assert await count(db, table) == 0, table


async def test_no_token_is_401_and_tenants_see_only_their_own(
    tasks: RunningTasks, auth: Headers, tenant: str
) -> None:
    assert (await tasks.http.post("/internal/tasks", json={"prompt": "x"})).status_code == 401
    assert (await tasks.http.get("/internal/tasks")).status_code == 401

    task_id = (
        await tasks.http.post("/internal/tasks", json={"prompt": "x"}, headers=auth(tenant))
    ).json()["id"]
    assert (await tasks.http.get(f"/internal/tasks/{task_id}")).status_code == 401
    other = auth("someone-else")
    assert (await tasks.http.get(f"/internal/tasks/{task_id}", headers=other)).status_code == 404
    listed = await tasks.http.get("/internal/tasks", headers=other)
    assert listed.json() == {"items": [], "next_cursor": None}
    mine = await tasks.http.get("/internal/tasks", headers=auth(tenant))
    assert [t["id"] for t in mine.json()["items"]] == [task_id]


async def test_idempotency_key_replays_refuses_reuse_and_expires(
    tasks: RunningTasks, auth: Headers, tenant: str, db: psycopg.AsyncConnection[Any]
) -> None:
    async def submit(body: dict[str, Any]) -> Any:
        return await tasks.http.post(
            "/internal/tasks", json=body, headers={**auth(tenant), "Idempotency-Key": "order-42"}
        )

    first = await submit({"prompt": "hi", "metadata": {"a": "1", "b": "2"}})
    replay = await submit({"metadata": {"b": "2", "a": "1"}, "prompt": "hi"})
    assert (first.status_code, replay.status_code) == (202, 202)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first.json()

    reused = await submit({"prompt": "something else"})
    assert reused.status_code == 422
    assert reused.json()["title"] == "Idempotency key reused"
    assert (await count(db, "tasks"), await count(db, "outbox")) == (1, 1)

    # once expired, the key may name a new task; its row is replaced
    await db.execute("UPDATE idempotency_keys SET expires_at = now() - interval '1 second'")
    fresh = await submit({"prompt": "something else"})
    assert fresh.status_code == 202
    assert "idempotent-replayed" not in fresh.headers
    assert fresh.json()["id"] != first.json()["id"]
    cur = await db.execute("SELECT task_id, expires_at > now() AS live FROM idempotency_keys")
    assert await cur.fetchall() == [{"task_id": UUID(fresh.json()["id"]), "live": True}]


async def test_a_key_whose_original_request_is_in_flight_is_a_409(
    tasks: RunningTasks, auth: Headers, tenant: str, db: psycopg.AsyncConnection[Any]
) -> None:
    headers = {**auth(tenant), "Idempotency-Key": "in-flight"}
    # another session holds the key's lock, as the original request's transaction would
    await db.execute("SELECT pg_advisory_lock(%s)", (idempotency_lock_id(tenant, "in-flight"),))
    try:
        busy = await tasks.http.post("/internal/tasks", json={"prompt": "hi"}, headers=headers)
        assert busy.status_code == 409
        assert await count(db, "tasks") == 0
        # the same key under another tenant is another lock
        other = {**auth("someone-else"), "Idempotency-Key": "in-flight"}
        elsewhere = await tasks.http.post("/internal/tasks", json={"prompt": "hi"}, headers=other)
        assert elsewhere.status_code == 202
    finally:
        await db.execute(
            "SELECT pg_advisory_unlock(%s)", (idempotency_lock_id(tenant, "in-flight"),)
        )
    free = await tasks.http.post("/internal/tasks", json={"prompt": "hi"}, headers=headers)
    assert free.status_code == 202


async def test_list_pages_newest_first_and_filters_by_status(
    tasks: RunningTasks, auth: Headers, tenant: str, database_url: str, db_schema: str
) -> None:
    ids = []
    for i in range(5):
        response = await tasks.http.post(
            "/internal/tasks", json={"prompt": f"p{i}"}, headers=auth(tenant)
        )
        ids.append(response.json()["id"])

    seen, cursor = [], None
    for _ in range(3):
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await tasks.http.get("/internal/tasks", params=params, headers=auth(tenant))).json()
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
    assert seen == ids[::-1]
    assert cursor is None

    database = Database(database_url, db_schema)
    await database.open()
    try:
        lifecycle = TaskLifecycle(PostgresTaskStore(database))
        for task_id in (ids[1], ids[3]):
            await lifecycle.record(
                TaskStarted.create(
                    TaskStartedData(attempt=1, worker_id="w"),
                    tenant_id=tenant,
                    task_id=UUID(task_id),
                )
            )
    finally:
        await database.close()

    running = await tasks.http.get(
        "/internal/tasks", params={"status": "running", "limit": 1}, headers=auth(tenant)
    )
    assert [t["id"] for t in running.json()["items"]] == [ids[3]]
    rest = await tasks.http.get(
        "/internal/tasks",
        params={"status": "running", "cursor": running.json()["next_cursor"]},
        headers=auth(tenant),
    )
    assert [t["id"] for t in rest.json()["items"]] == [ids[1]]
    assert rest.json()["next_cursor"] is None
    queued = await tasks.http.get("/internal/tasks?status=queued", headers=auth(tenant))
    assert [t["id"] for t in queued.json()["items"]] == [ids[4], ids[2], ids[0]]

    for bad in ({"status": "finished"}, {"cursor": "bm90IGEgY3Vyc29y"}):
        response = await tasks.http.get("/internal/tasks", params=bad, headers=auth(tenant))
        assert response.status_code == 422
