"""The internal HTTP API, built through the composition root on the in-memory store."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING
from uuid import UUID, uuid4

import httpx
import pytest

from relay_shared.events import TaskStarted, TaskStartedData, TaskSubmitted
from relay_shared.internal_auth import TokenIssuer, generate_keypair
from tasks.service import TaskLifecycle
from tasks.settings import TasksSettings

if TYPE_CHECKING:
    from conftest import Headers, InMemoryTaskStore, OpenClient

TASK_KEYS = {
    "id", "status", "prompt", "model", "metadata", "created_at", "updated_at", "started_at",
    "finished_at", "usage", "error", "result",
}  # fmt: skip


async def submit(
    client: httpx.AsyncClient, headers: dict[str, str], body: object, key: str | None = None
) -> httpx.Response:
    extra = {"Idempotency-Key": key} if key is not None else {}
    return await client.post("/internal/tasks", json=body, headers={**headers, **extra})


async def test_submit_stores_a_queued_task_and_its_submitted_event(
    client: httpx.AsyncClient, auth: Headers, store: InMemoryTaskStore
) -> None:
    response = await submit(client, auth("acme"), {"prompt": "hello", "metadata": {"k": "v"}})

    assert response.status_code == 202
    task = response.json()
    assert set(task) == TASK_KEYS
    assert response.headers["location"] == f"/v1/tasks/{task['id']}"
    assert "idempotent-replayed" not in response.headers
    assert task["status"] == "queued"
    assert (task["prompt"], task["model"], task["metadata"]) == (
        "hello",
        "claude-sonnet-4-5",
        {"k": "v"},
    )
    assert task["usage"] == {
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    assert (task["started_at"], task["finished_at"], task["error"], task["result"]) == (None,) * 4
    assert task["created_at"].endswith("Z")

    [event] = store.outbox
    assert isinstance(event, TaskSubmitted)
    assert (event.metadata.tenant_id, str(event.metadata.task_id)) == ("acme", task["id"])
    assert event.data.model_dump() == {
        "prompt": "hello",
        "model": "claude-sonnet-4-5",
        "metadata": {"k": "v"},
        "limits": None,  # budgets are not set yet
    }
    fetched = await client.get(f"/internal/tasks/{task['id']}", headers=auth("acme"))
    assert fetched.json() == task


@pytest.mark.parametrize(
    "call",
    [
        lambda c, h: c.post("/internal/tasks", json={"prompt": "x"}, headers=h),
        lambda c, h: c.get("/internal/tasks", headers=h),
        lambda c, h: c.get(f"/internal/tasks/{uuid4()}", headers=h),
    ],
    ids=["submit", "list", "get"],
)
@pytest.mark.parametrize("who", ["nobody", "wrong audience", "foreign signer", "not bearer"])
async def test_every_route_needs_a_gateway_token_for_tasks(
    client: httpx.AsyncClient,
    internal_keys: tuple[str, str],
    store: InMemoryTaskStore,
    call: object,
    who: str,
) -> None:
    ours = TokenIssuer(internal_keys[0])
    headers = {
        "nobody": {},
        "wrong audience": ours.headers(audience="artifacts", tenant_id="acme"),
        "foreign signer": TokenIssuer(generate_keypair()[0]).headers(
            audience="tasks", tenant_id="acme"
        ),
        "not bearer": {"Authorization": f"Basic {ours.token(audience='tasks', tenant_id='acme')}"},
    }[who]
    response = await call(client, headers)  # type: ignore[operator]
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert store.tasks == {}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"prompt": "   "},
        {"prompt": "x" * 1001},  # over max_prompt_chars
        {"prompt": "x", "model": ""},
        {"prompt": "x", "metadata": {str(i): "v" for i in range(17)}},
        {"prompt": "x", "unknown": 1},
        ["prompt"],
    ],
)
async def test_invalid_body_is_a_422_problem_and_stores_nothing(
    client: httpx.AsyncClient, auth: Headers, store: InMemoryTaskStore, body: object
) -> None:
    response = await submit(client, auth("acme"), body)
    assert response.status_code == 422
    problem = response.json()
    assert problem["title"] == "Invalid request"
    assert all(e["location"].startswith("body") for e in problem["errors"])
    assert (store.tasks, store.outbox) == ({}, [])


async def test_non_json_body_is_a_422_problem(
    client: httpx.AsyncClient, auth: Headers, store: InMemoryTaskStore
) -> None:
    response = await client.post("/internal/tasks", content=b"prompt=hi", headers=auth("acme"))
    assert response.status_code == 422
    assert store.tasks == {}


@pytest.mark.parametrize("key", ["", "k" * 256, "caf\u00e9", "tab\there"])
async def test_malformed_idempotency_key_is_a_422_problem(
    client: httpx.AsyncClient, auth: Headers, store: InMemoryTaskStore, key: str
) -> None:
    headers = {**auth("acme"), "Idempotency-Key": key}
    response = await client.post(
        "/internal/tasks",
        json={"prompt": "x"},
        headers=[(k, v.encode("latin-1")) for k, v in headers.items()],
    )
    assert response.status_code == 422, response.text
    assert store.tasks == {}


async def test_same_key_and_body_replays_the_same_task(
    client: httpx.AsyncClient, auth: Headers, store: InMemoryTaskStore
) -> None:
    first = await submit(client, auth("acme"), {"prompt": "hi", "metadata": {"a": "1"}}, "k-1")
    # same body with the default spelt out: still the same request
    again = await submit(
        client,
        auth("acme"),
        {"metadata": {"a": "1"}, "model": "claude-sonnet-4-5", "prompt": "hi"},
        "k-1",
    )
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert len(store.tasks) == len(store.outbox) == 1


async def test_same_key_with_another_body_is_refused(
    client: httpx.AsyncClient, auth: Headers, store: InMemoryTaskStore
) -> None:
    await submit(client, auth("acme"), {"prompt": "hi"}, "k-1")
    response = await submit(client, auth("acme"), {"prompt": "bye"}, "k-1")
    assert response.status_code == 422
    assert response.json()["title"] == "Idempotency key reused"
    assert len(store.tasks) == 1


async def test_keys_are_scoped_per_tenant(
    client: httpx.AsyncClient, auth: Headers, store: InMemoryTaskStore
) -> None:
    mine = await submit(client, auth("acme"), {"prompt": "hi"}, "shared")
    theirs = await submit(client, auth("globex"), {"prompt": "other"}, "shared")
    assert (mine.status_code, theirs.status_code) == (202, 202)
    assert "idempotent-replayed" not in theirs.headers
    assert mine.json()["id"] != theirs.json()["id"]


async def test_key_still_in_flight_is_a_409(
    client: httpx.AsyncClient, auth: Headers, store: InMemoryTaskStore
) -> None:
    store.keys_in_flight.add(("acme", "k-1"))
    response = await submit(client, auth("acme"), {"prompt": "hi"}, "k-1")
    assert response.status_code == 409
    assert store.tasks == {}


async def test_expired_key_makes_a_new_task(
    client: httpx.AsyncClient, auth: Headers, store: InMemoryTaskStore
) -> None:
    first = await submit(client, auth("acme"), {"prompt": "hi"}, "k-1")
    store.now += timedelta(hours=23)
    assert (await submit(client, auth("acme"), {"prompt": "hi"}, "k-1")).json()["id"] == (
        first.json()["id"]
    )
    store.now += timedelta(hours=1)
    later = await submit(client, auth("acme"), {"prompt": "something else"}, "k-1")
    assert later.status_code == 202
    assert "idempotent-replayed" not in later.headers
    assert later.json()["id"] != first.json()["id"]
    # the key now answers with the new task
    replay = await submit(client, auth("acme"), {"prompt": "something else"}, "k-1")
    assert replay.json()["id"] == later.json()["id"]


async def test_task_too_large_for_an_event_is_refused_and_nothing_is_stored(
    settings: TasksSettings, open_client: OpenClient, auth: Headers, store: InMemoryTaskStore
) -> None:
    roomy = settings.model_copy(update={"max_prompt_chars": 300_000})
    async with open_client(roomy) as client:
        response = await submit(client, auth("acme"), {"prompt": "x" * 270_000})
    assert response.status_code == 422
    assert response.json()["title"] == "Task too large"
    assert (store.tasks, store.outbox) == ({}, [])


async def test_get_answers_404_for_another_tenants_missing_or_malformed_id(
    client: httpx.AsyncClient, auth: Headers
) -> None:
    task_id = (await submit(client, auth("acme"), {"prompt": "hi"})).json()["id"]
    for tenant, path in [
        ("globex", task_id),
        ("acme", str(uuid4())),
        ("acme", "not-a-uuid"),
        ("acme", "1"),
    ]:
        response = await client.get(f"/internal/tasks/{path}", headers=auth(tenant))
        assert response.status_code == 404, (tenant, path)
        assert response.json()["title"] == "Task not found"


async def test_list_shows_only_the_callers_tasks(client: httpx.AsyncClient, auth: Headers) -> None:
    await submit(client, auth("acme"), {"prompt": "hi"})
    response = await client.get("/internal/tasks", headers=auth("globex"))
    assert response.json() == {"items": [], "next_cursor": None}


async def test_list_pages_newest_first(client: httpx.AsyncClient, auth: Headers) -> None:
    ids = [(await submit(client, auth("acme"), {"prompt": f"p{i}"})).json()["id"] for i in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/internal/tasks", params=params, headers=auth("acme"))).json()
        pages += 1
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]
    assert pages == 3
    default = (await client.get("/internal/tasks", headers=auth("acme"))).json()
    assert len(default["items"]) == 5


async def test_list_filters_by_status(
    client: httpx.AsyncClient, auth: Headers, store: InMemoryTaskStore
) -> None:
    ids = [(await submit(client, auth("acme"), {"prompt": f"p{i}"})).json()["id"] for i in range(3)]
    await TaskLifecycle(store).record(
        TaskStarted.create(
            TaskStartedData(attempt=1, worker_id="w"), tenant_id="acme", task_id=UUID(ids[1])
        )
    )
    running = await client.get("/internal/tasks?status=running", headers=auth("acme"))
    queued = await client.get("/internal/tasks?status=queued", headers=auth("acme"))
    assert [t["id"] for t in running.json()["items"]] == [ids[1]]
    assert [t["id"] for t in queued.json()["items"]] == [ids[2], ids[0]]


@pytest.mark.parametrize(
    "query",
    ["status=done", "status=", "limit=0", "limit=101", "limit=x", "cursor=garbage"],
)
async def test_bad_list_parameters_are_422_problems(
    client: httpx.AsyncClient, auth: Headers, query: str
) -> None:
    response = await client.get(f"/internal/tasks?{query}", headers=auth("acme"))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
