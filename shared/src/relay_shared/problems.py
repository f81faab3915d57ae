"""RFC 9457 problem responses (``application/problem+json``) for every error a service returns."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import psycopg
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """Raise from a route or service to answer with a problem response."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        type_: str = "about:blank",
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type_
        self.headers = headers
        self.extensions = extensions

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        body.update(self.extensions)
        return body


def problem_response(problem: Problem, instance: str | None = None) -> JSONResponse:
    return JSONResponse(
        problem.body(instance),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


def install_problem_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(exc, request.url.path)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        title = HTTPStatus(exc.status_code).phrase
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
        return problem_response(
            Problem(exc.status_code, title, detail, headers=dict(exc.headers or {})),
            request.url.path,
        )

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {
                "location": ".".join(str(p) for p in err.get("loc", ())),
                "message": err.get("msg", ""),
                "type": err.get("type", ""),
            }
            for err in exc.errors()
        ]
        return problem_response(
            Problem(
                422,
                "Invalid request",
                "The request did not match the expected shape; see errors.",
                errors=errors,
            ),
            request.url.path,
        )

    async def on_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # A dependency outage is not a bug: no traceback, and the client is told to come back.
        what = unavailable_dependency(exc)
        log.warning("%s %s: %s unavailable (%r)", request.method, request.url.path, what, exc)
        return problem_response(
            Problem(
                503,
                "Service Unavailable",
                f"{what} is unavailable right now; try again shortly.",
                headers={"Retry-After": "2"},
            ),
            request.url.path,
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(Problem(500, "Internal Server Error"), request.url.path)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    for error in DEPENDENCY_ERRORS:
        app.add_exception_handler(error, on_unavailable)
    app.add_exception_handler(Exception, on_unexpected)


class DependencyUnavailable(Exception):
    """A dependency cannot be reached for now: start-up waits and tries again; a request
    answers 503. Raise it (or a subclass) where a client library's own error says too little."""


# What an outage looks like from each client library, as a request sees it (a refused or
# timed-out connection, a pool that has none to give), with the name a client is told.
DEPENDENCY_ERRORS: dict[type[Exception], str] = {
    DependencyUnavailable: "A dependency",
    psycopg.OperationalError: "The database",  # includes psycopg_pool.PoolTimeout
    psycopg.InterfaceError: "The database",
    EndpointConnectionError: "An AWS service",
    ConnectTimeoutError: "An AWS service",
    ReadTimeoutError: "An AWS service",
}


def unavailable_dependency(exc: Exception) -> str:
    return next(
        (name for error, name in DEPENDENCY_ERRORS.items() if isinstance(exc, error)),
        "A dependency",
    )
