"""The parts of the public OpenAPI document FastAPI cannot infer from the routes."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from gateway.models import (
    CancelRequest,
    NewTask,
    NewWebhookEndpoint,
    ProblemDetails,
    TaskInput,
    TimelineEvent,
    WebhookEndpointPatch,
    WebhookReplayRequest,
)
from relay_shared.problems import PROBLEM_JSON

# Read by hand (the bodies) or streamed (the events), so FastAPI does not list them itself.
HAND_DECLARED = (
    NewTask,
    CancelRequest,
    TaskInput,
    TimelineEvent,
    NewWebhookEndpoint,
    WebhookEndpointPatch,
    WebhookReplayRequest,
)

COMPONENT_REF = "#/components/schemas/{model}"

NEW_TASK_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewTask"}}},
    }
}

CANCEL_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CancelRequest"}}},
    }
}


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` for a route whose required JSON body is read by hand as ``model``
    (one of HAND_DECLARED)."""
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


# The schema of a text/event-stream body is that of each event, an object of its fields, as
# OpenAPI 3.1 tools read it (3.2 names it `itemSchema`); `data:` is JSON, described by
# contentMediaType and contentSchema.
SERVER_SENT_EVENT: dict[str, Any] = {
    "type": "object",
    "description": "One event of the stream, as its fields. Comment lines (heartbeats) are not "
    "events.",
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$", "description": "The event's `seq`."},
        "event": {"type": "string", "description": "The event name: the event's `type`."},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": COMPONENT_REF.format(model="TimelineEvent")},
            "description": "The event: a TimelineEvent, as JSON.",
        },
    },
    "required": ["id", "event", "data"],
}

EVENT_STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": (
            "Server-sent events: `id:` = seq, `event:` = the event name, `data:` = a "
            "TimelineEvent as JSON; comment heartbeats keep it open; it ends after the terminal "
            "event."
        ),
        "content": {"text/event-stream": {"schema": SERVER_SENT_EVENT}},
    },
    204: {"description": "Resumed after the terminal event: nothing more will come."},
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Error answers for a route's ``responses=``."""
    return {
        status: {"model": ProblemDetails, "description": HTTPStatus(status).phrase}
        for status in statuses
    }


HEADER_REF = "#/components/headers/{name}"

# The IETF RateLimit fields (draft-ietf-httpapi-ratelimit-headers), on every /v1 answer of an
# authenticated request, and Retry-After on a 429.
HEADERS: dict[str, dict[str, Any]] = {
    "RateLimit-Policy": {
        "description": (
            "The tenant's rate limits this request counted against, as token buckets: "
            '`"requests";q=<burst>;w=<seconds an empty bucket takes to fill>`, and for '
            '`POST /v1/tasks` also `"submits";q=...;w=...`.'
        ),
        "schema": {"type": "string"},
        "example": '"requests";q=100;w=2',
    },
    "RateLimit": {
        "description": (
            "What is left of each bucket in `RateLimit-Policy`, in the same order: "
            '`"requests";r=<remaining>;t=<seconds until full again>`.'
        ),
        "schema": {"type": "string"},
        "example": '"requests";r=99;t=1',
    },
    "Retry-After": {
        "description": "Seconds to wait before the limit lets a request through again.",
        "schema": {"type": "integer", "minimum": 1},
    },
}

DESCRIPTION = (
    "Every `/v1` route takes `Authorization: Bearer <api key>`. Each tenant has a request rate "
    "(every request; a live connection counts once, when it opens) and a submit rate "
    "(`POST /v1/tasks`), token buckets described on every answer by the `RateLimit-Policy` and "
    "`RateLimit` fields; past one the answer is 429 with `Retry-After`, a problem whose "
    "`limit` names it (`requests` or `submits`). Submits also count against the tenant's "
    "quotas: unfinished tasks, and the estimated cost and tokens of tasks submitted since "
    "00:00 UTC; past one, `POST /v1/tasks` answers 429 `Quota exceeded` with `Retry-After` and "
    "`limit` `active_tasks`, `daily_spend` or `daily_tokens`. Live updates: "
    "`GET /v1/tasks/{task_id}/events` (Server-Sent Events), and `GET /v1/ws`, a WebSocket "
    "that follows many tasks at once (OpenAPI cannot describe it): send "
    '`{"type": "subscribe", "task_id": "<id>" or "*", "after": <seq>}`, `unsubscribe` and '
    "`ping` frames; each event arrives as the JSON of an SSE `data:` line (`TimelineEvent`), "
    "with `subscribed`, `unsubscribed`, `pong`, `end` and `error` control frames. Browsers "
    "authenticate both with `?ticket=` from `POST /v1/ws-tickets`. No string of a request body "
    "may hold a NUL character (U+0000) or a lone surrogate: either is a 422 that names the field."
)


def finish_openapi(app: FastAPI) -> None:
    """Error answers are ``application/problem+json`` (FastAPI files them under the route's own
    media type), and the hand-declared schemas join the components."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            document["info"]["description"] = DESCRIPTION
            for path, operations in document["paths"].items():
                for operation in operations.values():
                    for status, answer in operation.get("responses", {}).items():
                        _finish_answer(status, answer)
                        if path.startswith("/v1/"):
                            _rate_limit_headers(status, answer)
            document.setdefault("components", {})["headers"] = HEADERS
            schemas = document["components"].setdefault("schemas", {})
            for model in HAND_DECLARED:
                _declare(schemas, model)
        return app.openapi_schema  # type: ignore[return-value]  # set by build()

    app.openapi = openapi  # type: ignore[method-assign]


def _declare(schemas: dict[str, Any], model: type[BaseModel]) -> None:
    """``model``'s schema in the components, with the models it nests beside it (pydantic puts
    them in a ``$defs`` of its own, which no ``$ref`` in an OpenAPI document can reach)."""
    schema = model.model_json_schema(ref_template=COMPONENT_REF)
    for name, nested in {**schema.pop("$defs", {}), model.__name__: schema}.items():
        if schemas.setdefault(name, nested) != nested:
            raise ValueError(f"two different schemas are named {name} in the OpenAPI document")


def _rate_limit_headers(status: str, answer: dict[str, Any]) -> None:
    """The RateLimit fields on a /v1 answer (not on a 401: an unauthenticated request counts
    against nobody), and Retry-After on a 429."""
    if status == "401":
        return
    names = ["RateLimit-Policy", "RateLimit"] + (["Retry-After"] if status == "429" else [])
    headers = answer.setdefault("headers", {})
    for name in names:
        headers[name] = {"$ref": HEADER_REF.format(name=name)}


def _finish_answer(status: str, answer: dict[str, Any]) -> None:
    content: dict[str, Any] = answer.get("content", {})
    if status[0] in "45" and content:
        answer["content"] = content = {PROBLEM_JSON: content.popitem()[1]}
    for media in content.values():
        # a declared $ref stands alone: FastAPI adds "type: string" beside it for a non-JSON
        # response class
        if "$ref" in media.get("schema", {}):
            media["schema"] = {"$ref": media["schema"]["$ref"]}
