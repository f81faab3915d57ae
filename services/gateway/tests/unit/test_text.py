"""Every string of a public request body is text every service can store: a NUL (U+0000) or a
lone surrogate in any of them is a 422 at the edge that names the field, and reaches no service
(PostgreSQL's text and jsonb take neither: past the edge it would be a 5xx)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.models import NO_NUL_PATTERN

from .fakes import FakeInternalServices

TASK = "5f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"  # fixed: test ids must not vary between runs
WEBHOOK = "0f4e8d2c-6b1a-4e9d-8c3b-2a7f5e1d9c60"
URL = "https://example.com/hooks"
NUL = "a\x00b"

# (method, path, body, where the 422 says the fault is): one row per string of every body
NUL_IN: list[tuple[str, str, Any, str]] = [
    ("POST", "/v1/tasks", {"prompt": NUL}, "body.prompt"),
    ("POST", "/v1/tasks", {"prompt": "hi", "model": NUL}, "body.model"),
    ("POST", "/v1/tasks", {"prompt": "hi", "metadata": {"k": NUL}}, "body.metadata.k"),
    ("POST", "/v1/tasks", {"prompt": "hi", "metadata": {NUL: "v"}}, f"body.metadata.{NUL}.[key]"),
    ("POST", f"/v1/tasks/{TASK}/cancel", {"reason": NUL}, "body.reason"),
    ("POST", "/v1/webhooks", {"url": URL + NUL}, "body.url"),
    ("POST", "/v1/webhooks", {"url": URL, "description": NUL}, "body.description"),
    ("POST", "/v1/webhooks", {"url": URL, "event_types": [NUL]}, "body.event_types.0"),
    ("PATCH", f"/v1/webhooks/{WEBHOOK}", {"url": URL + NUL}, "body.url"),
    ("PATCH", f"/v1/webhooks/{WEBHOOK}", {"description": NUL}, "body.description"),
    ("PATCH", f"/v1/webhooks/{WEBHOOK}", {"event_types": [NUL]}, "body.event_types.0"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "location"),
    NUL_IN,
    ids=[f"{method} {path.split('/')[2]} {location}" for method, path, _, location in NUL_IN],
)
async def test_a_nul_in_any_string_is_a_422_naming_the_field_and_reaches_no_service(
    acme: httpx.AsyncClient,
    services: FakeInternalServices,
    method: str,
    path: str,
    body: Any,
    location: str,
) -> None:
    response = await acme.request(method, path, json=body)  # "\u0000" in the JSON

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    errors = response.json()["errors"]
    assert {"location": location, "type": "text_nul"} in [
        {"location": e["location"], "type": e["type"]} for e in errors
    ]
    assert "NUL" in next(e["message"] for e in errors if e["location"] == location)
    assert services.calls == []


async def test_a_lone_surrogate_is_a_422_naming_the_field_and_reaches_no_service(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    # valid JSON escapes, but no Unicode text: UTF-8 (and so PostgreSQL) cannot hold it
    body = b'{"prompt": "hi", "metadata": {"k": "\\ud800"}}'

    response = await acme.post(
        "/v1/tasks", content=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert (error["location"], error["type"]) == ("body.metadata.k", "text_surrogate")
    assert services.calls == []


async def test_other_text_is_forwarded_as_sent(
    acme: httpx.AsyncClient, services: FakeInternalServices
) -> None:
    """Only NUL and lone surrogates: other control characters, astral characters (a surrogate
    *pair* in JSON) and the like are text."""
    body = json.dumps({"prompt": "tab\there \u0001 \U0001f600 \\u0000 as text"}).encode()

    await acme.post("/v1/tasks", content=body, headers={"Content-Type": "application/json"})

    [call] = services.calls
    assert call.body == body


def _strings(node: Any, schemas: dict[str, Any], where: str) -> list[tuple[str, dict[str, Any]]]:
    """Every string schema under ``node`` (a request body's), with where it is."""
    if isinstance(node, list):
        return [s for i, item in enumerate(node) for s in _strings(item, schemas, f"{where}/{i}")]
    if not isinstance(node, dict):
        return []
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return _strings(schemas[name], schemas, name)
    found = [(where, node)] if node.get("type") == "string" else []
    for key, value in node.items():
        if key in ("properties", "patternProperties"):
            for name, schema in value.items():
                found += _strings(schema, schemas, f"{where}/{name}")
        elif key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf"):
            found += _strings(value, schemas, f"{where}/{key}")
    return found


def test_the_document_says_so_of_every_string_of_every_body(app: FastAPI) -> None:
    """Each free string of a request body has the pattern that refuses a NUL (a uuid or a
    date-time cannot hold one), and each object of strings the same for its keys."""
    document = app.openapi()
    schemas = document["components"]["schemas"]
    bodies = [
        (f"{method.upper()} {path}", operation["requestBody"])
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
    ]
    assert len(bodies) == 6
    free = []
    for name, body in bodies:
        for media in body["content"].values():
            for where, schema in _strings(media["schema"], schemas, name):
                if "format" not in schema and "enum" not in schema:
                    free.append(where)
                    assert schema.get("pattern") == NO_NUL_PATTERN, where
    assert len(free) >= 9, free
    metadata = schemas["NewTask"]["properties"]["metadata"]["anyOf"][0]
    assert metadata["propertyNames"] == {"pattern": NO_NUL_PATTERN}
