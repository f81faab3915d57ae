from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from relay_devkit.testing import ready_client
from relay_shared.http import create_service_app
from relay_shared.problems import Problem
from relay_shared.runtime import ServiceRuntime
from relay_shared.settings import ServiceSettings


class Body(BaseModel):
    prompt: str


@asynccontextmanager
async def nothing_to_start(app: FastAPI, runtime: ServiceRuntime) -> AsyncIterator[None]:
    yield


def _app() -> FastAPI:
    app = create_service_app(ServiceSettings(service_name="tasks"), start=nothing_to_start)

    @app.post("/things")
    async def make(body: Body) -> dict[str, str]:
        return {"prompt": body.prompt}

    @app.get("/conflict")
    async def conflict() -> None:
        raise Problem(409, "Busy", "Try again later.", retry_after=3)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    return app


def test_validation_errors_are_problem_json_with_locations() -> None:
    with ready_client(_app()) as client:
        response = client.post("/things", json={"nope": 1})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["title"] == "Invalid request"
    assert body["errors"][0]["location"] == "body.prompt"


def test_raised_problem_keeps_status_detail_and_extensions() -> None:
    with ready_client(_app()) as client:
        body = client.get("/conflict").json()
    assert body == {
        "type": "about:blank",
        "title": "Busy",
        "status": 409,
        "detail": "Try again later.",
        "instance": "/conflict",
        "retry_after": 3,
    }


def test_unknown_route_and_unexpected_errors_do_not_leak() -> None:
    with ready_client(_app(), raise_server_exceptions=False) as client:
        missing = client.get("/nowhere")
        boom = client.get("/boom")
    assert (missing.status_code, missing.json()["title"]) == (404, "Not Found")
    assert boom.status_code == 500
    assert "secret" not in boom.text


def test_healthz_answers() -> None:
    assert TestClient(_app()).get("/healthz").json() == {"status": "ok", "service": "tasks"}
