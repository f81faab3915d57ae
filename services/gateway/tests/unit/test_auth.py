"""Every /v1 route needs a live API key; the tenant it names is what the services are told."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from gateway.keys import CachedKeyStore, KeyStoreUnavailable, issue_key

from .conftest import KEY_CACHE_SECONDS
from .fakes import ACME_KEY, FakeInternalServices, FakeKeyStore, json_reply, task_document

TASK = "5f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"  # fixed: test ids must not vary between runs
ARTIFACT = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
ROUTES = [
    ("GET", "/v1/tasks"),
    ("POST", "/v1/tasks"),
    ("GET", f"/v1/tasks/{TASK}"),
    ("POST", f"/v1/tasks/{TASK}/cancel"),
    ("GET", f"/v1/tasks/{TASK}/events"),
    ("GET", f"/v1/tasks/{TASK}/artifacts"),
    ("GET", f"/v1/tasks/{TASK}/artifacts/{ARTIFACT}"),
    ("GET", f"/v1/tasks/{TASK}/artifacts/{ARTIFACT}/content"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_a_request_without_a_key_is_401_and_reaches_no_service(
    anonymous: httpx.AsyncClient, services: FakeInternalServices, method: str, path: str
) -> None:
    response = await anonymous.request(method, path, json={"prompt": "x"})

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 401
    assert services.calls == []


@pytest.mark.parametrize(
    "authorization",
    [
        f"Bearer {issue_key().raw}",  # well formed, never issued (or revoked)
        "Bearer rly_not-a-key",
        f"Basic {ACME_KEY}",
        "Bearer",
        ACME_KEY,
    ],
    ids=["never-issued", "malformed", "basic-scheme", "no-key", "no-scheme"],  # keys are random
)
async def test_a_wrong_key_is_401(
    anonymous: httpx.AsyncClient, services: FakeInternalServices, authorization: str
) -> None:
    response = await anonymous.get("/v1/tasks", headers={"Authorization": authorization})

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert services.calls == []


async def test_a_malformed_key_never_reaches_the_key_store(
    anonymous: httpx.AsyncClient, keys: FakeKeyStore
) -> None:
    await anonymous.get("/v1/tasks", headers={"Authorization": "Bearer rly_' OR 1=1 --"})
    assert keys.lookups == []


async def test_a_revoked_key_stops_working_once_the_gateway_forgets_it(
    acme: httpx.AsyncClient, keys: FakeKeyStore, services: FakeInternalServices
) -> None:
    services.answer(
        "tasks", "GET", "/internal/tasks", json_reply(200, {"items": [], "next_cursor": None})
    )
    for _ in range(3):
        assert (await acme.get("/v1/tasks")).status_code == 200
    assert keys.lookups == [ACME_KEY]  # remembered for RELAY_API_KEY_CACHE_SECONDS

    del keys.tenants_by_key[ACME_KEY]
    await asyncio.sleep(KEY_CACHE_SECONDS)

    assert (await acme.get("/v1/tasks")).status_code == 401


async def test_the_key_cache_remembers_answers_for_its_seconds_but_never_an_outage() -> None:
    store = FakeKeyStore({ACME_KEY: "acme"})
    now = [0.0]
    cached = CachedKeyStore(store, 5.0, timer=lambda: now[0])
    stranger = issue_key().raw
    assert await cached.tenant_for(ACME_KEY) == "acme"
    assert await cached.tenant_for(stranger) is None
    del store.tenants_by_key[ACME_KEY]
    now[0] = 4.9
    assert await cached.tenant_for(ACME_KEY) == "acme"
    assert await cached.tenant_for(stranger) is None
    assert store.lookups == [ACME_KEY, stranger]
    now[0] = 5.0
    assert await cached.tenant_for(ACME_KEY) is None  # revoked: within the cache's seconds
    store.available = False
    now[0] = 10.0
    with pytest.raises(KeyStoreUnavailable):
        await cached.tenant_for(ACME_KEY)
    store.available = True
    store.tenants_by_key[ACME_KEY] = "acme"
    assert await cached.tenant_for(ACME_KEY) == "acme"  # the failure was not remembered


async def test_the_keys_tenant_is_the_one_the_services_are_asked_for(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    services.answer("tasks", "GET", f"/internal/tasks/{TASK}", json_reply(200, task_document(TASK)))

    response = await acme.get(f"/v1/tasks/{TASK}")

    assert response.status_code == 200
    assert [call.tenant_id for call in services.calls] == ["acme"]


async def test_an_unavailable_key_store_is_503_not_401(
    acme: httpx.AsyncClient, keys: FakeKeyStore, services: FakeInternalServices
) -> None:
    keys.available = False

    response = await acme.get("/v1/tasks")

    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "database" not in response.text
    assert services.calls == []


async def test_health_and_the_api_document_need_no_key(anonymous: httpx.AsyncClient) -> None:
    assert (await anonymous.get("/healthz")).status_code == 200
    assert (await anonymous.get("/openapi.json")).status_code == 200
