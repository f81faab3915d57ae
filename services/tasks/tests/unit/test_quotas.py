"""Quotas at intake (DESIGN.md, *Limits and quotas*): the gateway sends a tenant's quotas with a
submit; over one, the answer is a 429 problem naming it, with Retry-After, and nothing is
stored. Built through the composition root on the in-memory fakes."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING
from uuid import UUID

import httpx

from relay_shared.events import (
    TaskProgressed,
    TaskProgressedData,
    TaskSucceeded,
    TaskSucceededData,
    Usage,
)

from .test_api import record, submit

if TYPE_CHECKING:
    from tasks.service import TaskService

    from .conftest import Headers
    from .fakes import InMemoryTaskStore


def quota(**quotas: object) -> dict[str, str]:
    names = {
        "active_tasks": "Relay-Quota-Active-Tasks",
        "daily_spend_usd": "Relay-Quota-Daily-Spend-Usd",
        "daily_tokens": "Relay-Quota-Daily-Tokens",
    }
    return {names[name]: str(value) for name, value in quotas.items()}


async def finish(service: TaskService, tenant: str, task_id: str) -> None:
    await record(
        service,
        TaskSucceeded.create(
            TaskSucceededData(attempt=1, usage=Usage(), cost_usd=0.0, summary="done"),
            tenant_id=tenant,
            task_id=UUID(task_id),
        ),
    )


async def spend(
    service: TaskService, tenant: str, task_id: str, *, cost: float, tokens: int
) -> None:
    await record(
        service,
        TaskProgressed.create(
            TaskProgressedData(
                attempt=1,
                step=1,
                message="m",
                usage=Usage(input_tokens=tokens // 2, output_tokens=tokens - tokens // 2),
                cost_usd=cost,
            ),
            tenant_id=tenant,
            task_id=UUID(task_id),
        ),
    )


async def test_the_active_task_quota_refuses_a_submit_over_it_until_a_task_finishes(
    client: httpx.AsyncClient, auth: Headers, service: TaskService, store: InMemoryTaskStore
) -> None:
    acme = auth("acme") | quota(active_tasks=2)
    first = await submit(client, acme, {"prompt": "one"})
    await submit(client, acme, {"prompt": "two"})

    refused = await submit(client, acme, {"prompt": "three"})

    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert (problem["title"], problem["limit"]) == ("Quota exceeded", "active_tasks")
    assert "2 unfinished tasks" in problem["detail"]
    assert int(refused.headers["retry-after"]) >= 1
    assert len(store.tasks) == len(store.outbox) == 2  # nothing stored, nothing published

    # another tenant has its own count; the same tenant without a quota is not counted
    assert (
        await submit(client, auth("globex") | quota(active_tasks=2), {"prompt": "x"})
    ).is_success
    await finish(service, "acme", first.json()["id"])
    assert (await submit(client, acme, {"prompt": "three"})).status_code == 202


async def test_a_replayed_idempotency_key_answers_with_its_task_even_over_the_quota(
    client: httpx.AsyncClient, auth: Headers, store: InMemoryTaskStore
) -> None:
    acme = auth("acme") | quota(active_tasks=1)
    first = await submit(client, acme, {"prompt": "one"}, key="k-1")

    again = await submit(client, acme, {"prompt": "one"}, key="k-1")
    other = await submit(client, acme, {"prompt": "two"}, key="k-2")

    assert (again.status_code, again.json()["id"]) == (202, first.json()["id"])
    assert other.status_code == 429
    assert len(store.tasks) == 1


async def test_the_daily_spend_and_token_quotas_count_the_tasks_submitted_today(
    client: httpx.AsyncClient, auth: Headers, service: TaskService, store: InMemoryTaskStore
) -> None:
    first = (await submit(client, auth("acme"), {"prompt": "one"})).json()["id"]
    await spend(service, "acme", first, cost=0.40, tokens=1000)

    assert (
        await submit(client, auth("acme") | quota(daily_spend_usd=0.5), {"prompt": "a"})
    ).is_success
    refused = await submit(client, auth("acme") | quota(daily_spend_usd=0.4), {"prompt": "b"})
    assert (refused.status_code, refused.json()["limit"]) == (429, "daily_spend")
    # until 00:00 UTC: the fake clock stands at 00:00:00.00x of its day
    retry_after = int(refused.headers["retry-after"])
    assert timedelta(hours=23) < timedelta(seconds=retry_after) <= timedelta(days=1)
    tokens = await submit(client, auth("acme") | quota(daily_tokens=1000), {"prompt": "c"})
    assert (tokens.status_code, tokens.json()["limit"]) == (429, "daily_tokens")

    # the next day, yesterday's spend no longer counts
    store.now += timedelta(days=1)
    next_day = await submit(client, auth("acme") | quota(daily_spend_usd=0.4), {"prompt": "d"})
    assert next_day.status_code == 202


async def test_quota_headers_out_of_range_are_a_422_and_store_nothing(
    client: httpx.AsyncClient, auth: Headers, store: InMemoryTaskStore
) -> None:
    for bad in (quota(active_tasks=0), quota(daily_spend_usd=-1), quota(daily_tokens="many")):
        response = await submit(client, auth("acme") | bad, {"prompt": "hi"})
        assert response.status_code == 422, bad
    assert store.tasks == {}
