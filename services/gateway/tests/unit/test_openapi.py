"""The public API document at /openapi.json describes the contract, and only the public API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from gateway.app import create_app
from gateway.settings import GatewaySettings
from relay_devkit.testing import ready_client
from relay_shared.composition import given
from relay_shared.internal_auth import generate_keypair

from .fakes import Fakes

PUBLISHED = Path(__file__).resolve().parents[4] / "contracts" / "openapi.json"


@pytest.fixture
async def document(anonymous: httpx.AsyncClient) -> dict[str, Any]:
    response = await anonymous.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def test_it_lists_the_public_routes_and_nothing_inside(document: dict[str, Any]) -> None:
    assert set(document["paths"]) == {
        "/v1/tasks",
        "/v1/tasks/{task_id}",
        "/v1/tasks/{task_id}/cancel",
        "/v1/tasks/{task_id}/input",
        "/v1/tasks/{task_id}/events",
        "/v1/tasks/{task_id}/artifacts",
        "/v1/tasks/{task_id}/artifacts/{artifact_id}",
        "/v1/tasks/{task_id}/artifacts/{artifact_id}/content",
        "/v1/ws-tickets",
        "/v1/webhooks",
        "/v1/webhooks/{webhook_id}",
        "/v1/webhooks/{webhook_id}/rotate-secret",
        "/v1/webhooks/{webhook_id}/deliveries",
        "/v1/webhooks/{webhook_id}/replay",
        "/v1/webhooks/{webhook_id}/test",
    }


def test_it_is_a_valid_openapi_3_1_document_as_served_and_as_published(
    document: dict[str, Any],
) -> None:
    """Every $ref resolves (a nested model's schema is a component, not a $defs no OpenAPI $ref
    can reach), so a client generator can read it; contracts/openapi.json is the same document
    (make contracts-check)."""
    validate(document)
    assert document["openapi"].startswith("3.1.")
    assert "$defs" not in json.dumps(document)
    validate(json.loads(PUBLISHED.read_text()))


def test_the_webhook_routes_are_under_their_own_tag(document: dict[str, Any]) -> None:
    operations = {
        (method.upper(), path): operation
        for path, methods in document["paths"].items()
        if path.startswith("/v1/webhooks")
        for method, operation in methods.items()
    }
    assert set(operations) == {
        ("POST", "/v1/webhooks"),
        ("GET", "/v1/webhooks"),
        ("GET", "/v1/webhooks/{webhook_id}"),
        ("PATCH", "/v1/webhooks/{webhook_id}"),
        ("DELETE", "/v1/webhooks/{webhook_id}"),
        ("POST", "/v1/webhooks/{webhook_id}/rotate-secret"),
        ("GET", "/v1/webhooks/{webhook_id}/deliveries"),
        ("POST", "/v1/webhooks/{webhook_id}/replay"),
        ("POST", "/v1/webhooks/{webhook_id}/test"),
    }
    assert {tuple(operation["tags"]) for operation in operations.values()} == {("webhooks",)}
    for (_, path), operation in operations.items():
        if "{webhook_id}" in path:
            [webhook_id] = [p for p in operation["parameters"] if p["in"] == "path"]
            assert webhook_id["schema"]["format"] == "uuid"


def test_the_webhook_bodies_are_required_and_closed(document: dict[str, Any]) -> None:
    paths = document["paths"]
    bodies = {
        "NewWebhookEndpoint": paths["/v1/webhooks"]["post"]["requestBody"],
        "WebhookEndpointPatch": paths["/v1/webhooks/{webhook_id}"]["patch"]["requestBody"],
        "WebhookReplayRequest": paths["/v1/webhooks/{webhook_id}/replay"]["post"]["requestBody"],
    }
    for name, body in bodies.items():
        assert body["required"] is True
        ref = body["content"]["application/json"]["schema"]["$ref"]
        assert ref == f"#/components/schemas/{name}"
        assert _schema(document, ref)["additionalProperties"] is False
    assert _schema(document, "NewWebhookEndpoint")["required"] == ["url"]


def _schema(document: dict[str, Any], ref: str) -> dict[str, Any]:
    schema: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return schema


def test_the_new_task_body_is_prompt_model_metadata_limits_and_nothing_else(
    document: dict[str, Any],
) -> None:
    body = document["paths"]["/v1/tasks"]["post"]["requestBody"]
    schema = _schema(document, body["content"]["application/json"]["schema"]["$ref"])
    limits_ref = schema["properties"]["limits"]["anyOf"][0]["$ref"]
    limits = _schema(document, limits_ref)

    assert body["required"] is True
    assert limits_ref == "#/components/schemas/NewTaskLimits"
    assert set(schema["properties"]) == {"prompt", "model", "metadata", "limits"}
    assert schema["required"] == ["prompt"]
    assert schema["additionalProperties"] is False
    assert set(limits["properties"]) == {
        "max_turns",
        "max_output_tokens",
        "max_wall_seconds",
        "max_cost_usd",
        "max_wait_seconds",
    }
    assert limits["additionalProperties"] is False
    assert "required" not in limits
    assert limits["properties"]["max_cost_usd"]["minimum"] == 0.01


def test_the_cancel_body_is_optional_and_only_a_reason(document: dict[str, Any]) -> None:
    cancel = document["paths"]["/v1/tasks/{task_id}/cancel"]["post"]
    body = cancel["requestBody"]
    schema = _schema(document, body["content"]["application/json"]["schema"]["$ref"])

    assert body["required"] is False
    assert set(schema["properties"]) == {"reason"}
    assert schema["additionalProperties"] is False
    assert cancel["responses"]["202"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/Task"
    )
    assert {"404", "409"} <= set(cancel["responses"])


def test_answers_are_described(document: dict[str, Any]) -> None:
    paths = document["paths"]
    submit = paths["/v1/tasks"]["post"]["responses"]
    task = document["components"]["schemas"]["Task"]
    events = paths["/v1/tasks/{task_id}/events"]["get"]["responses"]
    content = paths["/v1/tasks/{task_id}/artifacts/{artifact_id}/content"]["get"]["responses"]

    assert submit["202"]["content"]["application/json"]["schema"]["$ref"].endswith("/Task")
    assert set(task["properties"]) >= {
        "id",
        "status",
        "usage",
        "error",
        "result",
        "metadata",
        "limits",
    }
    assert "cost_usd" in _schema(document, "Usage")["properties"]
    assert "budget" in _schema(document, "TaskError")["properties"]
    assert set(task["properties"]["status"]["enum"]) == {
        "queued",
        "running",
        "waiting_for_input",
        "cancelling",
        "succeeded",
        "failed",
        "cancelled",
    }
    # each event of the stream: its fields, the data one a TimelineEvent as JSON
    event = events["200"]["content"]["text/event-stream"]["schema"]
    assert event["required"] == ["id", "event", "data"]
    assert event["properties"]["data"]["contentMediaType"] == "application/json"
    assert event["properties"]["data"]["contentSchema"]["$ref"].endswith("/TimelineEvent")
    assert "302" in content


def test_errors_are_problem_json_everywhere(document: dict[str, Any]) -> None:
    for path, operations in document["paths"].items():
        for operation in operations.values():
            for status, answer in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert list(answer["content"]) == ["application/problem+json"], (path, status)
            assert "401" in operation["responses"], path


def test_every_route_asks_for_a_bearer_key(document: dict[str, Any]) -> None:
    [(scheme_name, scheme)] = document["components"]["securitySchemes"].items()
    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}
    for operations in document["paths"].values():
        for operation in operations.values():
            assert operation["security"] == [{scheme_name: []}]


async def test_the_docs_page_is_served(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/docs")
    assert response.status_code == 200
    assert "/openapi.json" in response.text


def test_without_public_docs_neither_the_page_nor_the_document_is_served(fakes: Fakes) -> None:
    settings = GatewaySettings(
        public_api_docs=False, internal_auth_private_key=generate_keypair()[0]
    )
    app = create_app(settings, ports=given(fakes.ports()))
    with ready_client(app) as client:
        for path in ("/docs", "/openapi.json"):
            assert client.get(path).status_code == 404, path
        assert client.get("/healthz").status_code == 200  # the ALB's probes stay


def test_every_route_documents_the_rate_limits(document: dict[str, Any]) -> None:
    """A 429 with Retry-After on every operation, and the RateLimit fields on every answer but
    a 401 (an unauthenticated request counts against no tenant)."""
    headers = document["components"]["headers"]
    assert set(headers) == {"RateLimit-Policy", "RateLimit", "Retry-After"}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            answers = operation["responses"]
            assert "429" in answers, (method, path)
            assert "Retry-After" in answers["429"]["headers"], (method, path)
            for status, answer in answers.items():
                fields = set(answer.get("headers", {}))
                if status == "401":
                    assert "RateLimit" not in fields
                else:
                    assert {"RateLimit-Policy", "RateLimit"} <= fields, (method, path, status)
