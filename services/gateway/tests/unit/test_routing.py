"""Each public route reaches the service that owns the object, and its answer comes back."""

from __future__ import annotations

import json

import httpx
import pytest

from gateway.upstream import InternalReply

from .fakes import FakeInternalServices, json_reply, problem_reply, task_document

TASK = "5f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"  # fixed: test ids must not vary between runs
ARTIFACT = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
ARTIFACT_DOCUMENT = {
    "id": ARTIFACT,
    "task_id": TASK,
    "name": "report.md",
    "content_type": "text/markdown",
    "size": 12,
    "sha256": "0" * 64,
    "created_at": "2026-01-01T00:00:00Z",
    "download_url": "http://s3.local/relay-local-artifacts/artifacts/acme/x?X-Amz-Signature=abc",
    "download_url_expires_at": "2026-01-01T00:05:00Z",
}


@pytest.fixture
def acme_task(services: FakeInternalServices) -> str:
    services.answer("tasks", "GET", f"/internal/tasks/{TASK}", json_reply(200, task_document(TASK)))
    return TASK


async def test_a_new_task_is_forwarded_byte_for_byte_with_its_idempotency_key(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    services.answer(
        "tasks",
        "POST",
        "/internal/tasks",
        json_reply(
            202,
            task_document(TASK),
            headers={"Idempotent-Replayed": "true", "X-Internal-Node": "tasks-7"},
        ),
    )
    body = b'{ "metadata": {"run": "1"},\n  "prompt": "Write a haiku." }'

    response = await acme.post(
        "/v1/tasks",
        content=body,
        headers={"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": "k-1"},
    )

    assert response.status_code == 202
    assert response.json() == task_document(TASK)
    assert response.headers["location"] == f"/v1/tasks/{TASK}"
    assert response.headers["idempotent-replayed"] == "true"
    assert "x-internal-node" not in response.headers
    [call] = services.calls
    assert (call.service, call.method, call.path) == ("tasks", "POST", "/internal/tasks")
    assert call.tenant_id == "acme"
    assert call.body == body
    assert call.headers["Idempotency-Key"] == "k-1"


async def test_a_new_task_without_an_idempotency_key_sends_none(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    services.answer("tasks", "POST", "/internal/tasks", json_reply(202, task_document(TASK)))

    response = await acme.post("/v1/tasks", json={"prompt": "x"})

    assert response.status_code == 202
    assert "idempotent-replayed" not in response.headers
    assert "Idempotency-Key" not in services.calls[0].headers


async def test_an_internal_location_never_reaches_the_client(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    # a reply without a task id: the location is rewritten, never relayed as it is
    services.answer(
        "tasks",
        "POST",
        "/internal/tasks",
        InternalReply(202, {"Location": f"http://10.0.3.7:8101/internal/tasks/{TASK}"}, b"{}"),
    )

    response = await acme.post("/v1/tasks", json={"prompt": "x"})

    assert response.headers["location"] == f"/v1/tasks/{TASK}"


async def test_a_refusal_from_tasks_reaches_the_client_unchanged(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    refusal = problem_reply(
        409,
        "Conflict",
        "The first request with this key is still in flight.",
        **{"Retry-After": "1"},
    )
    services.answer("tasks", "POST", "/internal/tasks", refusal)

    response = await acme.post("/v1/tasks", json={"prompt": "x"}, headers={"Idempotency-Key": "k"})

    assert response.status_code == 409
    assert response.content == refusal.body
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    assert "location" not in response.headers


async def test_listing_forwards_only_the_paging_and_status_parameters(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    page = {"items": [task_document(TASK)], "next_cursor": "abc"}
    services.answer("tasks", "GET", "/internal/tasks", json_reply(200, page))

    response = await acme.get(
        "/v1/tasks", params={"status": "running", "limit": "5", "cursor": "xyz", "tenant": "globex"}
    )

    assert response.status_code == 200
    assert response.json() == page
    [call] = services.calls
    assert dict(call.params) == {"status": "running", "limit": "5", "cursor": "xyz"}
    assert call.tenant_id == "acme"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "101"}, "query.limit"),
        ({"limit": "0"}, "query.limit"),
        ({"cursor": "not base64!"}, "query.cursor"),
        ({"cursor": "x" * 201}, "query.cursor"),
    ],
    ids=["limit-over-100", "limit-0", "cursor-not-base64url", "cursor-too-long"],
)
async def test_paging_the_api_cannot_take_is_a_422_at_the_edge(
    acme: httpx.AsyncClient, services: FakeInternalServices, params: dict[str, str], field: str
) -> None:
    """What the OpenAPI document says a parameter takes is what the API takes."""
    response = await acme.get("/v1/tasks", params=params)

    assert response.status_code == 422
    assert [error["location"] for error in response.json()["errors"]] == [field]
    assert services.calls == []


async def test_a_task_comes_from_tasks(acme: httpx.AsyncClient, acme_task: str) -> None:
    response = await acme.get(f"/v1/tasks/{acme_task}")

    assert response.status_code == 200
    assert response.json()["id"] == acme_task


async def test_artifacts_are_asked_for_only_after_tasks_confirms_the_task(
    acme: httpx.AsyncClient, services: FakeInternalServices, acme_task: str
) -> None:
    listing = {"items": [{k: v for k, v in ARTIFACT_DOCUMENT.items() if "download" not in k}]}
    services.answer(
        "artifacts", "GET", f"/internal/tasks/{acme_task}/artifacts", json_reply(200, listing)
    )

    response = await acme.get(f"/v1/tasks/{acme_task}/artifacts")

    assert response.status_code == 200
    assert response.json() == listing
    assert [(c.service, c.path) for c in services.calls] == [
        ("tasks", f"/internal/tasks/{acme_task}"),
        ("artifacts", f"/internal/tasks/{acme_task}/artifacts"),
    ]
    assert {c.tenant_id for c in services.calls} == {"acme"}


async def test_one_artifact_and_its_content_redirect(
    acme: httpx.AsyncClient, services: FakeInternalServices, acme_task: str
) -> None:
    path = f"/internal/tasks/{acme_task}/artifacts/{ARTIFACT}"
    services.answer("artifacts", "GET", path, json_reply(200, ARTIFACT_DOCUMENT))

    one = await acme.get(f"/v1/tasks/{acme_task}/artifacts/{ARTIFACT}")
    content = await acme.get(f"/v1/tasks/{acme_task}/artifacts/{ARTIFACT}/content")

    assert one.status_code == 200
    assert one.json() == ARTIFACT_DOCUMENT
    assert content.status_code == 302
    assert content.headers["location"] == ARTIFACT_DOCUMENT["download_url"]
    assert content.headers["cache-control"] == "no-store"
    assert [c.service for c in services.calls] == ["tasks", "artifacts", "tasks", "artifacts"]


@pytest.mark.parametrize(
    "suffix",
    ["", "/events", "/artifacts", f"/artifacts/{ARTIFACT}", f"/artifacts/{ARTIFACT}/content"],
)
async def test_a_task_tasks_does_not_show_this_tenant_is_404_on_every_route(
    acme: httpx.AsyncClient, services: FakeInternalServices, suffix: str
) -> None:
    # the fake tasks service knows no task at all: another tenant's or a missing one
    response = await acme.get(f"/v1/tasks/{TASK}{suffix}")

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert services.services_called() == ["tasks"]


async def test_an_artifact_refusal_is_relayed(
    acme: httpx.AsyncClient, services: FakeInternalServices, acme_task: str
) -> None:
    response = await acme.get(f"/v1/tasks/{acme_task}/artifacts/{ARTIFACT}")

    assert response.status_code == 404
    assert response.json()["detail"].endswith("is not there")  # the artifacts service's words


async def test_a_relayed_problem_names_the_public_path_not_the_internal_one(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    body = {
        "type": "about:blank",
        "title": "Invalid request",
        "status": 422,
        "instance": "/internal/tasks",
        "errors": [{"location": "body.model", "message": "unknown model"}],
    }
    services.answer(
        "tasks",
        "POST",
        "/internal/tasks",
        InternalReply(422, {"content-type": "application/problem+json"}, json.dumps(body).encode()),
    )

    response = await acme.post("/v1/tasks", json={"prompt": "x", "model": "nope"})

    assert response.status_code == 422
    assert response.json() == {**body, "instance": "/v1/tasks"}
    assert "/internal" not in response.text


async def test_an_id_that_is_not_a_uuid_is_422_and_reaches_no_service(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    response = await acme.get("/v1/tasks/not-a-uuid/artifacts")

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert services.calls == []


async def test_a_path_that_tries_to_climb_out_reaches_no_service(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    response = await acme.get("/v1/tasks/..%2F..%2Finternal%2Ftasks/artifacts")

    assert response.status_code in {404, 422}
    assert services.calls == []


@pytest.mark.parametrize("status", [500, 502, 401, 403])
async def test_a_failing_service_is_a_502_that_says_nothing_of_the_inside(
    acme: httpx.AsyncClient, services: FakeInternalServices, status: int
) -> None:
    failure = problem_reply(status, "Boom", "psycopg.OperationalError at tasks-7:5432")
    services.answer("tasks", "GET", f"/internal/tasks/{TASK}", failure)

    response = await acme.get(f"/v1/tasks/{TASK}")

    assert response.status_code == 502
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "psycopg" not in response.text
    assert "tasks-7" not in response.text


async def test_a_service_that_is_starting_or_degraded_is_a_503_to_retry(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    starting = problem_reply(
        503, "Service starting", "waiting for PostgreSQL at db-3:5432", **{"retry-after": "5"}
    )
    services.answer("tasks", "GET", f"/internal/tasks/{TASK}", starting)

    response = await acme.get(f"/v1/tasks/{TASK}")

    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert "db-3" not in response.text  # the inside stays inside


async def test_an_unreachable_service_is_a_503(
    acme: httpx.AsyncClient, services: FakeInternalServices, acme_task: str
) -> None:
    services.unreachable.add("artifacts")

    response = await acme.get(f"/v1/tasks/{acme_task}/artifacts")

    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert response.json()["status"] == 503


async def test_an_artifact_without_a_download_url_is_a_502_not_a_broken_redirect(
    acme: httpx.AsyncClient, services: FakeInternalServices, acme_task: str
) -> None:
    path = f"/internal/tasks/{acme_task}/artifacts/{ARTIFACT}"
    without = {k: v for k, v in ARTIFACT_DOCUMENT.items() if k != "download_url"}
    services.answer("artifacts", "GET", path, json_reply(200, without))

    response = await acme.get(f"/v1/tasks/{acme_task}/artifacts/{ARTIFACT}/content")

    assert response.status_code == 502


async def test_garbage_from_a_service_is_a_502(
    acme: httpx.AsyncClient, services: FakeInternalServices, acme_task: str
) -> None:
    path = f"/internal/tasks/{acme_task}/artifacts/{ARTIFACT}"
    services.answer("artifacts", "GET", path, InternalReply(200, {}, b"<html>oops"))

    response = await acme.get(f"/v1/tasks/{acme_task}/artifacts/{ARTIFACT}/content")

    assert response.status_code == 502
    assert json.loads(response.content)["title"] == "Bad Gateway"


CANCEL_PATH = f"/internal/tasks/{TASK}/cancel"


async def test_a_cancel_is_forwarded_to_tasks_with_its_reason(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    cancelling = task_document(TASK, status="cancelling")
    services.answer("tasks", "POST", CANCEL_PATH, json_reply(202, cancelling))
    body = b'{"reason": "wrong prompt"}'

    response = await acme.post(
        f"/v1/tasks/{TASK}/cancel", content=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 202
    assert response.json() == cancelling
    [call] = services.calls
    assert (call.service, call.method, call.path, call.tenant_id) == (
        "tasks",
        "POST",
        CANCEL_PATH,
        "acme",
    )
    assert call.body == body
    assert call.headers["Content-Type"] == "application/json"


async def test_a_cancel_without_a_body_sends_none(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    services.answer(
        "tasks", "POST", CANCEL_PATH, json_reply(202, task_document(TASK, status="cancelling"))
    )

    first = await acme.post(f"/v1/tasks/{TASK}/cancel")
    again = await acme.post(f"/v1/tasks/{TASK}/cancel")

    assert (first.status_code, again.status_code) == (202, 202)
    assert [(c.body, dict(c.headers)) for c in services.calls] == [(None, {}), (None, {})]


async def test_a_cancel_after_the_end_is_tasks_409_unchanged(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    refusal = problem_reply(409, "Task already finished", "The task has already succeeded.")
    services.answer("tasks", "POST", CANCEL_PATH, refusal)

    response = await acme.post(f"/v1/tasks/{TASK}/cancel")

    assert response.status_code == 409
    assert response.content == refusal.body
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_cancel_for_a_task_tasks_does_not_know_is_the_gateways_404(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    # the fake knows no task: another tenant's or a missing one
    response = await acme.post(f"/v1/tasks/{TASK}/cancel")

    assert response.status_code == 404
    assert response.json()["detail"] == f"No task {TASK}."
    assert "internal" not in response.text
    assert services.services_called() == ["tasks"]


async def test_a_cancel_for_an_id_that_is_not_a_uuid_reaches_no_service(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    response = await acme.post("/v1/tasks/not-a-uuid/cancel")

    assert response.status_code == 422
    assert services.calls == []


async def test_a_cancel_tasks_cannot_answer_is_a_503(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    services.unreachable.add("tasks")

    response = await acme.post(f"/v1/tasks/{TASK}/cancel")

    assert response.status_code == 503
