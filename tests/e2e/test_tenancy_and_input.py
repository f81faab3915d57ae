"""Tenant isolation, authentication and bad input, through the public API."""

from __future__ import annotations

import pytest

from relay_devkit.api_client import PublicApi

pytestmark = pytest.mark.e2e


def _routes(task_id: str, artifact_id: str) -> list[str]:
    return [
        f"/v1/tasks/{task_id}",
        f"/v1/tasks/{task_id}/events",
        f"/v1/tasks/{task_id}/artifacts",
        f"/v1/tasks/{task_id}/artifacts/{artifact_id}",
        f"/v1/tasks/{task_id}/artifacts/{artifact_id}/content",
    ]


async def test_another_tenant_gets_404_everywhere_and_never_sees_the_task(
    api: PublicApi, other_api: PublicApi
) -> None:
    task = await api.submit("/steps 1")
    await api.timeline(task["id"])
    artifact_id = (await api.artifacts(task["id"]))[0]["id"]
    for route in _routes(task["id"], artifact_id):
        response = await other_api.http.get(route)
        assert response.status_code == 404, route
        assert response.headers["content-type"].startswith("application/problem+json"), route
        assert task["prompt"] not in response.text
    assert task["id"] not in [t["id"] for t in await other_api.all_tasks()]


async def test_requests_without_a_valid_key_get_401(api: PublicApi, anonymous: PublicApi) -> None:
    task = await api.submit("/steps 1")
    routes = [*_routes(task["id"], task["id"]), "/v1/tasks"]
    for route in routes:
        response = await anonymous.http.get(route)
        assert response.status_code == 401, route
        assert response.headers["content-type"].startswith("application/problem+json")
    wrong = await anonymous.http.get(
        f"/v1/tasks/{task['id']}", headers={"Authorization": "Bearer rly_not-a-key"}
    )
    assert wrong.status_code == 401
    posted = await anonymous.http.post("/v1/tasks", json={"prompt": "x"})
    assert posted.status_code == 401


async def test_idempotency_key_returns_the_same_task_for_the_same_body(
    api: PublicApi, other_api: PublicApi
) -> None:
    headers = {"Idempotency-Key": "nightly-report-1"}
    body = {"prompt": "/steps 1", "metadata": {"run": "1"}}
    first = await api.http.post("/v1/tasks", json=body, headers=headers)
    again = await api.http.post("/v1/tasks", json=body, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers.get("idempotent-replayed") == "true"

    changed = await api.http.post("/v1/tasks", json={**body, "prompt": "/steps 2"}, headers=headers)
    assert changed.status_code == 422
    assert changed.headers["content-type"].startswith("application/problem+json")

    # keys are scoped per tenant: the same key elsewhere is a new task
    elsewhere = await other_api.http.post("/v1/tasks", json=body, headers=headers)
    assert elsewhere.status_code == 202
    assert elsewhere.json()["id"] != first.json()["id"]

    mine = [t["id"] for t in await api.all_tasks()]
    assert mine.count(first.json()["id"]) == 1


@pytest.mark.parametrize(
    ("case", "request_kwargs", "status"),
    [
        ("missing prompt", {"json": {"model": "claude-sonnet-4-5"}}, 422),
        ("blank prompt", {"json": {"prompt": "   "}}, 422),
        ("wrong type", {"json": {"prompt": 42}}, 422),
        ("unknown field", {"json": {"prompt": "x", "priority": "high"}}, 422),
        ("bad metadata", {"json": {"prompt": "x", "metadata": {"k": {"nested": 1}}}}, 422),
        ("not json", {"content": b"{nope", "headers": {"content-type": "application/json"}}, 400),
        (
            "not a json body",
            {"content": b"prompt=x", "headers": {"content-type": "text/plain"}},
            415,
        ),
        ("oversize", {"json": {"prompt": "x" * 200_000}}, 413),
        ("oversize prompt", {"json": {"prompt": "x" * 40_000}}, 422),
    ],
)
async def test_bad_input_gets_a_problem_and_creates_nothing(
    api: PublicApi, case: str, request_kwargs: dict[str, object], status: int
) -> None:
    before = len(await api.all_tasks())
    response = await api.http.post("/v1/tasks", **request_kwargs)  # type: ignore[arg-type]
    assert response.status_code == status, (case, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status
    assert problem["title"]
    assert len(await api.all_tasks()) == before
