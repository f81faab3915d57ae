"""The internal HTTP API, built through the composition root on the in-memory fakes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from uuid import UUID, uuid4

import httpx
import pytest

from relay_shared.events import (
    DomainEvent,
    TaskCancelled,
    TaskCancelledData,
    TaskCancelRequested,
    TaskFailed,
    TaskFailedData,
    TaskInputProvided,
    TaskInputRequested,
    TaskInputRequestedData,
    TaskProgressed,
    TaskProgressedData,
    TaskStarted,
    TaskStartedData,
    TaskSubmitted,
    TaskSucceeded,
    TaskSucceededData,
    TerminalData,
    Usage,
)
from relay_shared.internal_auth import TokenIssuer, generate_keypair
from tasks.service import TaskService
from tasks.settings import TasksSettings

if TYPE_CHECKING:
    from .conftest import Headers, OpenClient
    from .fakes import InMemoryTaskStore

TASK_KEYS = {
    "id", "status", "prompt", "model", "metadata", "limits", "created_at", "updated_at",
    "started_at", "finished_at", "usage", "error", "result", "question",
}  # fmt: skip
DEFAULT_LIMITS = {
    "max_turns": 50,
    "max_output_tokens": 32000,
    "max_wall_seconds": 1800.0,
    "max_cost_usd": None,
    "max_wait_seconds": 86400.0,
}


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
        "cost_usd": 0.0,
    }
    assert task["limits"] == DEFAULT_LIMITS
    assert (task["started_at"], task["finished_at"], task["error"], task["result"]) == (None,) * 4
    assert task["created_at"].endswith("Z")

    [event] = store.outbox
    assert isinstance(event, TaskSubmitted)
    assert (event.metadata.tenant_id, str(event.metadata.task_id)) == ("acme", task["id"])
    assert event.data.model_dump() == {
        "prompt": "hello",
        "model": "claude-sonnet-4-5",
        "metadata": {"k": "v"},
        "limits": DEFAULT_LIMITS,
    }
    fetched = await client.get(f"/internal/tasks/{task['id']}", headers=auth("acme"))
    assert fetched.json() == task


@pytest.mark.parametrize(
    "call",
    [
        lambda c, h: c.post("/internal/tasks", json={"prompt": "x"}, headers=h),
        lambda c, h: c.get("/internal/tasks", headers=h),
        lambda c, h: c.get(f"/internal/tasks/{uuid4()}", headers=h),
        lambda c, h: c.post(f"/internal/tasks/{uuid4()}/cancel", headers=h),
        lambda c, h: c.post(f"/internal/tasks/{uuid4()}/input", json={"text": "a"}, headers=h),
    ],
    ids=["submit", "list", "get", "cancel", "input"],
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
        {"prompt": "x", "model": "claude-2"},
        {"prompt": "x", "limits": {"max_turns": 0}},
        {"prompt": "x", "limits": {"max_turns": 201}},
        {"prompt": "x", "limits": {"max_cost_usd": 100.5}},
        {"prompt": "x", "limits": {"budget": 1}},
        {"prompt": "a\x00b"},  # PostgreSQL cannot store a NUL: a 422, not a failed insert
        {"prompt": "x", "metadata": {"k": "\x00"}},
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
    client: httpx.AsyncClient, auth: Headers, service: TaskService
) -> None:
    ids = [(await submit(client, auth("acme"), {"prompt": f"p{i}"})).json()["id"] for i in range(3)]
    await service.lifecycle.record(
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


# --- limits and models -------------------------------------------------------------------------


async def test_limits_asked_for_are_stored_returned_and_sent_with_the_defaults_filled_in(
    client: httpx.AsyncClient, auth: Headers, store: InMemoryTaskStore
) -> None:
    response = await submit(
        client, auth("acme"), {"prompt": "hi", "limits": {"max_turns": 7, "max_cost_usd": 2.5}}
    )

    assert response.status_code == 202
    effective = {**DEFAULT_LIMITS, "max_turns": 7, "max_cost_usd": 2.5}
    assert response.json()["limits"] == effective
    [event] = store.outbox
    assert isinstance(event, TaskSubmitted)
    assert event.data.limits is not None
    assert event.data.limits.model_dump() == effective
    fetched = await client.get(f"/internal/tasks/{response.json()['id']}", headers=auth("acme"))
    assert fetched.json()["limits"] == effective


async def test_a_limit_over_its_maximum_is_a_422_naming_the_field_and_range(
    client: httpx.AsyncClient, auth: Headers, store: InMemoryTaskStore
) -> None:
    response = await submit(client, auth("acme"), {"prompt": "x", "limits": {"max_turns": 500}})

    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error == {
        "location": "body.limits.max_turns",
        "message": "max_turns must be between 1 and 200",
        "type": "limit_out_of_range",
    }
    assert (store.tasks, store.outbox) == ({}, [])


async def test_the_maxima_and_defaults_are_settings(
    settings: TasksSettings, open_client: OpenClient, auth: Headers, store: InMemoryTaskStore
) -> None:
    roomy = settings.model_copy(
        update={"limit_max_turns": 1000, "default_max_turns": 10, "default_max_cost_usd": 1.0}
    )
    async with open_client(roomy) as client:
        plain = await submit(client, auth("acme"), {"prompt": "x"})
        many = await submit(client, auth("acme"), {"prompt": "x", "limits": {"max_turns": 500}})

    assert plain.json()["limits"] == {**DEFAULT_LIMITS, "max_turns": 10, "max_cost_usd": 1.0}
    assert many.status_code == 202
    assert many.json()["limits"]["max_turns"] == 500


async def test_an_unknown_model_is_a_422_listing_the_allowed_ones(
    client: httpx.AsyncClient, auth: Headers, store: InMemoryTaskStore
) -> None:
    response = await submit(client, auth("acme"), {"prompt": "x", "model": "gpt-4o"})

    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["location"] == "body.model"
    assert error["message"] == (
        "unknown model; allowed: claude-opus-4-1, claude-sonnet-4-5, claude-haiku-4-5"
    )
    assert (store.tasks, store.outbox) == ({}, [])


async def test_an_allowed_model_other_than_the_default_is_kept(
    client: httpx.AsyncClient, auth: Headers, store: InMemoryTaskStore
) -> None:
    response = await submit(client, auth("acme"), {"prompt": "x", "model": "claude-haiku-4-5"})

    assert response.json()["model"] == "claude-haiku-4-5"
    [event] = store.outbox
    assert isinstance(event, TaskSubmitted)
    assert event.data.model == "claude-haiku-4-5"


async def test_an_idempotency_key_tells_bodies_apart_by_their_limits(
    client: httpx.AsyncClient, auth: Headers, store: InMemoryTaskStore
) -> None:
    first = await submit(client, auth("acme"), {"prompt": "hi"}, "k-1")
    spelt_out = await submit(
        client, auth("acme"), {"prompt": "hi", "limits": {"max_turns": 50}}, "k-1"
    )
    other = await submit(client, auth("acme"), {"prompt": "hi", "limits": {"max_turns": 5}}, "k-1")

    assert spelt_out.headers["idempotent-replayed"] == "true"
    assert spelt_out.json()["id"] == first.json()["id"]
    assert other.status_code == 422
    assert other.json()["title"] == "Idempotency key reused"
    assert len(store.tasks) == len(store.outbox) == 1


# --- cancel -----------------------------------------------------------------------------------


async def cancel(
    client: httpx.AsyncClient, headers: dict[str, str], task_id: str, body: object = None
) -> httpx.Response:
    path = f"/internal/tasks/{task_id}/cancel"
    if body is None:
        return await client.post(path, headers=headers)
    return await client.post(path, json=body, headers=headers)


def cancel_requests(store: InMemoryTaskStore) -> list[TaskCancelRequested]:
    return [e for e in store.outbox if isinstance(e, TaskCancelRequested)]


async def record(service: TaskService, *events: DomainEvent) -> None:
    """The agent's lifecycle events, as the consumer hands them to the service."""
    for event in events:
        await service.lifecycle.record(event)


async def test_cancelling_a_queued_task_asks_the_agent_once(
    client: httpx.AsyncClient, auth: Headers, store: InMemoryTaskStore
) -> None:
    task_id = (await submit(client, auth("acme"), {"prompt": "hi"})).json()["id"]

    response = await cancel(client, auth("acme"), task_id, {"reason": "changed my mind"})

    assert response.status_code == 202
    assert set(response.json()) == TASK_KEYS
    assert (response.json()["id"], response.json()["status"]) == (task_id, "cancelling")
    [event] = cancel_requests(store)
    assert (event.metadata.tenant_id, str(event.metadata.task_id)) == ("acme", task_id)
    assert event.data.reason == "changed my mind"
    fetched = await client.get(f"/internal/tasks/{task_id}", headers=auth("acme"))
    assert fetched.json() == response.json()


async def test_cancelling_a_running_task_without_a_body(
    client: httpx.AsyncClient, auth: Headers, store: InMemoryTaskStore, service: TaskService
) -> None:
    task_id = (await submit(client, auth("acme"), {"prompt": "hi"})).json()["id"]
    await record(
        service,
        TaskStarted.create(
            TaskStartedData(attempt=1, worker_id="w"), tenant_id="acme", task_id=UUID(task_id)
        ),
    )

    response = await cancel(client, auth("acme"), task_id)

    assert (response.status_code, response.json()["status"]) == (202, "cancelling")
    assert response.json()["started_at"] is not None
    [event] = cancel_requests(store)
    assert event.data.reason is None


async def test_cancelling_again_answers_202_without_a_second_event(
    client: httpx.AsyncClient, auth: Headers, store: InMemoryTaskStore
) -> None:
    task_id = (await submit(client, auth("acme"), {"prompt": "hi"})).json()["id"]
    first = await cancel(client, auth("acme"), task_id, {"reason": "first"})

    again = await cancel(client, auth("acme"), task_id, {"reason": "second"})

    assert (again.status_code, again.json()["status"]) == (202, "cancelling")
    assert again.json() == first.json()
    [event] = cancel_requests(store)
    assert event.data.reason == "first"


async def test_concurrent_cancels_publish_one_event(
    client: httpx.AsyncClient, auth: Headers, store: InMemoryTaskStore
) -> None:
    task_id = (await submit(client, auth("acme"), {"prompt": "hi"})).json()["id"]

    answers = await asyncio.gather(*(cancel(client, auth("acme"), task_id) for _ in range(5)))

    assert {a.status_code for a in answers} == {202}
    assert len(cancel_requests(store)) == 1


@pytest.mark.parametrize(
    ("ending", "status"),
    [
        (TaskSucceededData(attempt=1, summary="done"), "succeeded"),
        (TaskFailedData(attempt=1, code="boom", message="m"), "failed"),
        (TaskCancelledData(attempt=1), "cancelled"),
    ],
)
async def test_cancelling_a_finished_task_is_a_409_that_names_its_status(
    client: httpx.AsyncClient,
    auth: Headers,
    store: InMemoryTaskStore,
    service: TaskService,
    ending: TerminalData,
    status: str,
) -> None:
    task_id = (await submit(client, auth("acme"), {"prompt": "hi"})).json()["id"]
    event_class = {"succeeded": TaskSucceeded, "failed": TaskFailed, "cancelled": TaskCancelled}
    await record(
        service, event_class[status].create(ending, tenant_id="acme", task_id=UUID(task_id))
    )
    before = store.tasks[UUID(task_id)]

    response = await cancel(client, auth("acme"), task_id)

    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["title"], problem["task_status"]) == ("Task already finished", status)
    assert status in problem["detail"]
    assert store.tasks[UUID(task_id)] == before
    assert cancel_requests(store) == []


async def test_cancelling_another_tenants_missing_or_malformed_task_is_404(
    client: httpx.AsyncClient, auth: Headers, store: InMemoryTaskStore
) -> None:
    task_id = (await submit(client, auth("acme"), {"prompt": "hi"})).json()["id"]
    for tenant, path in [("globex", task_id), ("acme", str(uuid4())), ("acme", "not-a-uuid")]:
        response = await cancel(client, auth(tenant), path)
        assert response.status_code == 404, (tenant, path)
        assert response.json()["title"] == "Task not found"
    assert store.tasks[UUID(task_id)].state.status == "queued"
    assert cancel_requests(store) == []


@pytest.mark.parametrize(
    "body",
    [
        b'{"reason": "' + b"r" * 501 + b'"}',
        b'{"reason": 1}',
        b'{"why": "x"}',
        b'{"reason": "a\\u0000b"}',
        b"not json",
        b"[]",
    ],
)
async def test_a_bad_cancel_body_is_a_422_and_changes_nothing(
    client: httpx.AsyncClient, auth: Headers, store: InMemoryTaskStore, body: bytes
) -> None:
    task_id = (await submit(client, auth("acme"), {"prompt": "hi"})).json()["id"]

    response = await client.post(
        f"/internal/tasks/{task_id}/cancel", content=body, headers=auth("acme")
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert store.tasks[UUID(task_id)].state.status == "queued"
    assert cancel_requests(store) == []


async def test_late_agent_events_keep_a_cancelling_task_cancelling(
    client: httpx.AsyncClient, auth: Headers, service: TaskService
) -> None:
    task_id = (await submit(client, auth("acme"), {"prompt": "hi"})).json()["id"]
    await cancel(client, auth("acme"), task_id)
    await record(
        service,
        TaskStarted.create(
            TaskStartedData(attempt=1, worker_id="w"), tenant_id="acme", task_id=UUID(task_id)
        ),
        TaskProgressed.create(
            TaskProgressedData(
                attempt=1, step=1, message="m", usage=Usage(output_tokens=3), cost_usd=0.5
            ),
            tenant_id="acme",
            task_id=UUID(task_id),
        ),
    )

    task = (await client.get(f"/internal/tasks/{task_id}", headers=auth("acme"))).json()

    assert task["status"] == "cancelling"
    assert (task["usage"]["output_tokens"], task["usage"]["cost_usd"]) == (3, 0.5)
    assert task["started_at"] is not None


# --- usage, cost and budget --------------------------------------------------------------------


async def test_cost_and_budget_reach_the_task_and_never_move_backwards(
    client: httpx.AsyncClient, auth: Headers, service: TaskService
) -> None:
    task_id = UUID((await submit(client, auth("acme"), {"prompt": "hi"})).json()["id"])

    def progressed(step: int, output_tokens: int, cost: float) -> TaskProgressed:
        return TaskProgressed.create(
            TaskProgressedData(
                attempt=1,
                step=step,
                message=f"step {step}",
                usage=Usage(input_tokens=10 * step, output_tokens=output_tokens),
                cost_usd=cost,
            ),
            tenant_id="acme",
            task_id=task_id,
        )

    async def task() -> dict[str, object]:
        answer: dict[str, object] = (
            await client.get(f"/internal/tasks/{task_id}", headers=auth("acme"))
        ).json()
        return answer

    step_1, step_2 = progressed(1, 5, 0.10), progressed(2, 9, 0.30)
    await record(service, step_1, step_2, step_1, progressed(1, 5, 0.10))  # a repeat, a late one
    assert (await task())["usage"] == {
        "input_tokens": 20,
        "output_tokens": 9,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cost_usd": 0.30,
    }

    final_usage = Usage(input_tokens=30, output_tokens=12, cache_read_input_tokens=4)
    await record(
        service,
        TaskFailed.create(
            TaskFailedData(
                attempt=1,
                steps=2,
                usage=final_usage,
                cost_usd=0.42,
                code="budget_exceeded",
                message="the task reached its cost limit",
                budget="max_cost_usd",
            ),
            tenant_id="acme",
            task_id=task_id,
        ),
        progressed(3, 99, 9.0),  # after the end: final values stay
    )
    done = await task()
    assert done["status"] == "failed"
    assert done["usage"] == {**final_usage.model_dump(), "cost_usd": 0.42}
    assert done["error"] == {
        "code": "budget_exceeded",
        "message": "the task reached its cost limit",
        "budget": "max_cost_usd",
    }


async def test_an_error_that_is_not_a_budget_has_a_null_budget(
    client: httpx.AsyncClient, auth: Headers, service: TaskService
) -> None:
    task_id = (await submit(client, auth("acme"), {"prompt": "hi"})).json()["id"]
    await record(
        service,
        TaskFailed.create(
            TaskFailedData(attempt=1, code="invalid_request", message="400 from the model"),
            tenant_id="acme",
            task_id=UUID(task_id),
        ),
    )

    task = (await client.get(f"/internal/tasks/{task_id}", headers=auth("acme"))).json()

    assert task["error"] == {
        "code": "invalid_request",
        "message": "400 from the model",
        "budget": None,
    }


# --- human input ------------------------------------------------------------------------------


async def waiting_task(
    client: httpx.AsyncClient, auth: Headers, service: TaskService
) -> tuple[str, UUID]:
    """A task that runs and asked a question; returns its id and the question's."""
    task_id = (await submit(client, auth("acme"), {"prompt": "hi"})).json()["id"]
    question_id = uuid4()
    await record(
        service,
        TaskStarted.create(
            TaskStartedData(attempt=1, worker_id="w"), tenant_id="acme", task_id=UUID(task_id)
        ),
        TaskInputRequested.create(
            TaskInputRequestedData(
                attempt=1, step=1, question_id=question_id, question="Which region?"
            ),
            tenant_id="acme",
            task_id=UUID(task_id),
        ),
    )
    return task_id, question_id


def answers(store: InMemoryTaskStore) -> list[TaskInputProvided]:
    return [e for e in store.outbox if isinstance(e, TaskInputProvided)]


async def answer(
    client: httpx.AsyncClient, headers: dict[str, str], task_id: str, body: object
) -> httpx.Response:
    return await client.post(f"/internal/tasks/{task_id}/input", json=body, headers=headers)


async def test_a_waiting_task_shows_its_question_and_the_answer_resumes_it_once(
    client: httpx.AsyncClient, auth: Headers, store: InMemoryTaskStore, service: TaskService
) -> None:
    task_id, question_id = await waiting_task(client, auth, service)
    waiting = (await client.get(f"/internal/tasks/{task_id}", headers=auth("acme"))).json()
    assert waiting["status"] == "waiting_for_input"
    assert (waiting["question"]["id"], waiting["question"]["text"]) == (
        str(question_id),
        "Which region?",
    )

    response = await answer(
        client, auth("acme"), task_id, {"text": "eu-west-1", "question_id": str(question_id)}
    )

    assert response.status_code == 202
    assert (response.json()["status"], response.json()["question"]) == ("running", None)
    [provided] = answers(store)
    assert (provided.data.question_id, provided.data.text) == (question_id, "eu-west-1")
    assert (provided.metadata.tenant_id, str(provided.metadata.task_id)) == ("acme", task_id)

    again = await answer(client, auth("acme"), task_id, {"text": "us-east-1"})
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["task_status"] == "running"
    assert len(answers(store)) == 1


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"text": ""}, 422),
        ({"text": "   \n"}, 422),
        ({}, 422),
        ({"text": 5}, 422),
        ({"text": "ok", "extra": 1}, 422),
        ({"text": "ok", "question_id": "nope"}, 422),
        ({"text": "x" * 16001}, 413),
        ({"text": "ok", "question_id": str(UUID(int=7))}, 409),
    ],
    ids=["empty", "blank", "missing", "not text", "unknown field", "bad id", "too long", "other q"],
)
async def test_a_bad_answer_is_a_problem_and_changes_nothing(
    client: httpx.AsyncClient,
    auth: Headers,
    store: InMemoryTaskStore,
    service: TaskService,
    body: object,
    status: int,
) -> None:
    task_id, _ = await waiting_task(client, auth, service)

    response = await answer(client, auth("acme"), task_id, body)

    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    task = (await client.get(f"/internal/tasks/{task_id}", headers=auth("acme"))).json()
    assert (task["status"], answers(store)) == ("waiting_for_input", [])


async def test_the_longest_answer_allowed_is_taken(
    client: httpx.AsyncClient, auth: Headers, service: TaskService
) -> None:
    task_id, _ = await waiting_task(client, auth, service)
    response = await answer(client, auth("acme"), task_id, {"text": "x" * 16000})
    assert response.status_code == 202


async def test_an_answer_for_a_task_that_does_not_wait_is_a_409(
    client: httpx.AsyncClient, auth: Headers, store: InMemoryTaskStore
) -> None:
    task_id = (await submit(client, auth("acme"), {"prompt": "hi"})).json()["id"]

    response = await answer(client, auth("acme"), task_id, {"text": "too early"})

    assert response.status_code == 409
    assert response.json()["task_status"] == "queued"
    assert answers(store) == []


def question_event(task_id: str, question_id: UUID) -> TaskInputRequested:
    return TaskInputRequested.create(
        TaskInputRequestedData(attempt=1, step=1, question_id=question_id, question="Which zone?"),
        tenant_id="acme",
        task_id=UUID(task_id),
    )


async def test_an_answer_that_overtakes_its_question_waits_for_the_record_to_catch_up(
    client: httpx.AsyncClient, auth: Headers, store: InMemoryTaskStore, service: TaskService
) -> None:
    """The timeline (or a webhook) shows task.input_requested before this service has applied
    it from its own queue: a client answering at once names a question the record lacks."""
    task_id = (await submit(client, auth("acme"), {"prompt": "hi"})).json()["id"]
    question_id = uuid4()
    started = TaskStarted.create(
        TaskStartedData(attempt=1, worker_id="w"), tenant_id="acme", task_id=UUID(task_id)
    )
    await record(service, started)

    async def question_arrives_later() -> None:
        await asyncio.sleep(0.3)
        await record(service, question_event(task_id, question_id))

    body = {"text": "zone b", "question_id": str(question_id)}
    response, _ = await asyncio.gather(
        answer(client, auth("acme"), task_id, body), question_arrives_later()
    )

    assert response.status_code == 202, response.text
    assert response.json()["status"] == "running"
    [provided] = answers(store)
    assert (provided.data.question_id, provided.data.text) == (question_id, "zone b")


async def test_an_answer_to_a_question_that_never_comes_is_refused_after_the_catch_up(
    settings: TasksSettings,
    open_client: OpenClient,
    auth: Headers,
    store: InMemoryTaskStore,
    service: TaskService,
) -> None:
    async with open_client(settings.model_copy(update={"input_catch_up_seconds": 0.2})) as http:
        task_id = (await submit(http, auth("acme"), {"prompt": "hi"})).json()["id"]
        asked = str(uuid4())

        response = await answer(http, auth("acme"), task_id, {"text": "a", "question_id": asked})

    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["task_status"] == "queued"
    assert f"has not asked question {asked}" in response.json()["detail"]
    assert answers(store) == []


async def test_a_second_answer_to_an_answered_question_is_refused_without_waiting(
    settings: TasksSettings,
    open_client: OpenClient,
    auth: Headers,
    store: InMemoryTaskStore,
    service: TaskService,
) -> None:
    """The record knows the question it was answered on: a repeat is a conflict at once, not a
    question that may still be on its way."""
    async with open_client(settings.model_copy(update={"input_catch_up_seconds": 60})) as http:
        task_id, question_id = await waiting_task(http, auth, service)
        body = {"text": "zone a", "question_id": str(question_id)}
        assert (await answer(http, auth("acme"), task_id, body)).status_code == 202

        async with asyncio.timeout(10):  # far below the 60 s a wait would take
            again = await answer(http, auth("acme"), task_id, body | {"text": "zone b"})

    assert again.status_code == 409
    assert again.json()["task_status"] == "running"
    assert "answered already" in again.json()["detail"]
    assert [a.data.text for a in answers(store)] == ["zone a"]


@pytest.mark.parametrize("who", ["other tenant", "missing", "malformed"])
async def test_an_answer_for_another_tenants_missing_or_malformed_task_is_404(
    client: httpx.AsyncClient,
    auth: Headers,
    store: InMemoryTaskStore,
    service: TaskService,
    who: str,
) -> None:
    task_id, _ = await waiting_task(client, auth, service)
    target, tenant = {
        "other tenant": (task_id, "globex"),
        "missing": (str(uuid4()), "acme"),
        "malformed": ("not-a-uuid", "acme"),
    }[who]

    response = await answer(client, auth(tenant), target, {"text": "mine now"})

    assert response.status_code == 404
    task = (await client.get(f"/internal/tasks/{task_id}", headers=auth("acme"))).json()
    assert (task["status"], answers(store)) == ("waiting_for_input", [])


async def test_concurrent_answers_resume_the_task_once(
    client: httpx.AsyncClient, auth: Headers, store: InMemoryTaskStore, service: TaskService
) -> None:
    task_id, _ = await waiting_task(client, auth, service)

    responses = await asyncio.gather(
        *(answer(client, auth("acme"), task_id, {"text": f"answer {n}"}) for n in range(5))
    )

    assert sorted(r.status_code for r in responses) == [202, 409, 409, 409, 409]
    assert len(answers(store)) == 1


async def test_a_waiting_task_can_be_cancelled(
    client: httpx.AsyncClient, auth: Headers, store: InMemoryTaskStore, service: TaskService
) -> None:
    task_id, _ = await waiting_task(client, auth, service)

    response = await cancel(client, auth("acme"), task_id)

    assert (response.json()["status"], response.json()["question"]) == ("cancelling", None)
    assert len(cancel_requests(store)) == 1
    late = await answer(client, auth("acme"), task_id, {"text": "too late"})
    assert late.status_code == 409


async def test_an_answer_after_the_wait_has_ended_is_a_409(
    client: httpx.AsyncClient, auth: Headers, store: InMemoryTaskStore, service: TaskService
) -> None:
    task_id = (
        await submit(client, auth("acme"), {"prompt": "hi", "limits": {"max_wait_seconds": 60}})
    ).json()["id"]
    question_id = uuid4()
    await record(
        service,
        TaskInputRequested.create(
            TaskInputRequestedData(attempt=1, step=1, question_id=question_id, question="Q?"),
            tenant_id="acme",
            task_id=UUID(task_id),
            occurred_at=datetime.now(UTC) - timedelta(seconds=61),
        ),
    )

    response = await answer(client, auth("acme"), task_id, {"text": "too late"})

    assert response.status_code == 409
    assert "input_timeout" in response.json()["detail"]
    assert answers(store) == []
