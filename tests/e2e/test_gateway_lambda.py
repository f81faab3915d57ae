"""The gateway's Lambda entry point (edge = "apigateway", ADR 0016), run in-process against the
running stack with API Gateway HTTP API events (payload format 2.0): it answers as the ECS
gateway does, reading its signing key from Secrets Manager (moto's) as the function does on AWS.

Sync tests: the entry point runs its own event loop, as in a Lambda execution environment."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway.lambda_http import LambdaGateway
from relay_devkit.apigateway import LambdaHttpClient, LambdaResponse
from relay_ops.stack.process import RunningStack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def lambda_gateway(stack: RunningStack) -> Iterator[LambdaGateway]:
    with pytest.MonkeyPatch.context() as patch:
        environment = stack.gateway_lambda_environment()
        assert "RELAY_INTERNAL_AUTH_PRIVATE_KEY" not in environment  # only referenced
        for name, value in environment.items():
            patch.setenv(name, value)
        handler = LambdaGateway(ready_timeout=60)
        try:
            yield handler
        finally:
            handler.close()
            asyncio.set_event_loop(None)


@pytest.fixture
def via_lambda(lambda_gateway: LambdaGateway, api_key: str) -> LambdaHttpClient:
    return LambdaHttpClient(lambda_gateway, api_key)


@pytest.fixture
def via_ecs(stack: RunningStack, api_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=stack.gateway_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30
    ) as client:
        yield client


def _finished(client: LambdaHttpClient, task_id: str, within: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        task: dict[str, Any] = client.request("GET", f"/v1/tasks/{task_id}").json()
        if task["status"] in {"succeeded", "failed", "cancelled"}:
            return task
        time.sleep(0.3)
    raise AssertionError(f"task {task_id} not finished within {within}s")


def test_a_task_through_the_lambda_entry_point_end_to_end(
    via_lambda: LambdaHttpClient, via_ecs: httpx.Client
) -> None:
    key = str(uuid.uuid4())
    body = {"prompt": "Through API Gateway.\n/steps 2\n/artifact edge.md"}
    created = via_lambda.request(
        "POST", "/v1/tasks", json_body=body, headers={"Idempotency-Key": key}
    )
    assert created.status == 202, created.body
    task = created.json()
    assert task["status"] == "queued"
    assert created.headers["location"].endswith(f"/v1/tasks/{task['id']}")
    # the same key again is the same task, as on ECS
    again = via_lambda.request(
        "POST", "/v1/tasks", json_body=body, headers={"Idempotency-Key": key}
    )
    assert again.json()["id"] == task["id"]

    finished = _finished(via_lambda, task["id"])
    assert finished["status"] == "succeeded"
    assert finished == via_ecs.get(f"/v1/tasks/{task['id']}").json()

    listed = via_lambda.request("GET", f"/v1/tasks/{task['id']}/artifacts")
    assert listed.status == 200
    [artifact] = listed.json()["items"]
    assert artifact["name"] == "edge.md"
    one = via_lambda.request("GET", f"/v1/tasks/{task['id']}/artifacts/{artifact['id']}")
    assert one.status == 200
    download = httpx.get(one.json()["download_url"], timeout=10)
    assert download.status_code == 200
    assert download.content

    page = via_lambda.request("GET", "/v1/tasks", params={"limit": "5"})
    assert task["id"] in [t["id"] for t in page.json()["items"]]


def test_refusals_match_the_ecs_gateway(
    lambda_gateway: LambdaGateway,
    stack: RunningStack,
    via_ecs: httpx.Client,
    other_api_key: str,
    api_key: str,
) -> None:
    url = stack.gateway_url

    def same(answer: LambdaResponse, expected: httpx.Response) -> None:
        assert answer.status == expected.status_code
        assert answer.headers["content-type"] == expected.headers["content-type"]
        assert answer.json() == expected.json()

    anonymous = LambdaHttpClient(lambda_gateway)
    same(anonymous.request("GET", "/v1/tasks"), httpx.get(f"{url}/v1/tasks"))
    wrong = LambdaHttpClient(lambda_gateway, "rk_not_a_key")
    same(
        wrong.request("GET", "/v1/tasks"),
        httpx.get(f"{url}/v1/tasks", headers={"Authorization": "Bearer rk_not_a_key"}),
    )

    ours = LambdaHttpClient(lambda_gateway, api_key)
    invalid = {"prompt": ""}
    same(
        ours.request("POST", "/v1/tasks", json_body=invalid),
        via_ecs.post("/v1/tasks", json=invalid),
    )

    # another tenant's task is not found, through either edge
    task = ours.request("POST", "/v1/tasks", json_body={"prompt": "mine"}).json()
    theirs = LambdaHttpClient(lambda_gateway, other_api_key)
    answer = theirs.request("GET", f"/v1/tasks/{task['id']}")
    assert answer.status == 404
    ecs_other = httpx.get(
        f"{url}/v1/tasks/{task['id']}",
        headers={"Authorization": f"Bearer {other_api_key}"},
    )
    same(answer, ecs_other)
    cancel = theirs.request("POST", f"/v1/tasks/{task['id']}/cancel")
    assert cancel.status == 404
    assert ours.request("GET", f"/v1/tasks/{task['id']}").json()["status"] != "cancel_requested"


def test_event_streams_are_refused_with_a_problem(via_lambda: LambdaHttpClient) -> None:
    task = via_lambda.request("POST", "/v1/tasks", json_body={"prompt": "/steps 1"}).json()
    answer = via_lambda.request(
        "GET", f"/v1/tasks/{task['id']}/events", headers={"Accept": "text/event-stream"}
    )
    assert answer.status == 501
    assert answer.headers["content-type"] == "application/problem+json"
    assert "API Gateway" in answer.json()["detail"]
