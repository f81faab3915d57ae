"""The gateway as an AWS Lambda function behind API Gateway's HTTP API (`edge = "apigateway"`,
docs/adr/0016-two-edges.md): the same FastAPI app, through Mangum.

    handler = gateway.lambda_http.handler   # the image's command on Lambda (awslambdaric)

An execution environment runs one invocation at a time and is frozen between them. The app's
lifespan (the runtime: the PostgreSQL pool, the HTTP client to the internal services, Redis) is
entered once per environment, at its first invocation, and waited for until ready; Mangum runs
each request with lifespan "off" on that same event loop. (Mangum's own lifespan handling would
start and stop the whole runtime around every request.)

Secrets never sit in the function's environment: ``RELAY_LAMBDA_SECRETS`` maps environment
variable names to Secrets Manager references written as ECS writes them (``<arn-or-name>`` or
``<arn-or-name>:<json-key>::``), read once at cold start, before the settings are.

Event streams (SSE) are refused with 501: API Gateway buffers a whole response, so a stream
could only end at the integration timeout. Clients poll, or use an ALB edge.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import re
import time
from collections.abc import Callable, Coroutine, Mapping
from contextlib import AsyncExitStack
from typing import Any, TypeVar
from urllib.parse import unquote

import botocore.session
from fastapi import FastAPI
from mangum import Mangum

from gateway.app import create_app
from relay_shared.http import PROBES
from relay_shared.problems import PROBLEM_JSON, Problem

log = logging.getLogger(__name__)

SECRETS_VARIABLE = "RELAY_LAMBDA_SECRETS"
READY_TIMEOUT_VARIABLE = "RELAY_LAMBDA_READY_TIMEOUT_SECONDS"
DEFAULT_READY_TIMEOUT = 20.0
EVENT_STREAM = re.compile(r"^/v1/tasks/[^/]+/events/?$")
T = TypeVar("T")


def _parse_reference(reference: str) -> tuple[str, str | None]:
    """``(secret id, json key or None)`` of an ECS-style reference."""
    if reference.startswith("arn:"):
        parts = reference.split(":")
        secret_id, rest = ":".join(parts[:7]), parts[7:]
    else:
        secret_id, *rest = reference.split(":")
    json_key = rest[0] if rest and rest[0] else None
    return secret_id, json_key


def secrets_from_manager(references: Mapping[str, str], *, client: Any) -> dict[str, str]:
    """Each variable's value from Secrets Manager (a JSON key of the secret when one is named)."""
    values: dict[str, str] = {}
    for variable, reference in references.items():
        secret_id, json_key = _parse_reference(reference)
        secret = client.get_secret_value(SecretId=secret_id)["SecretString"]
        values[variable] = secret if json_key is None else str(json.loads(secret)[json_key])
    return values


def load_secrets(environ: dict[str, str] | os._Environ[str] = os.environ) -> list[str]:
    """Put the secrets named by ``RELAY_LAMBDA_SECRETS`` into ``environ``; returns the names."""
    raw = environ.get(SECRETS_VARIABLE)
    if not raw:
        return []
    references = json.loads(raw)
    if not isinstance(references, dict):
        raise ValueError(f"{SECRETS_VARIABLE} must be a JSON object of name -> secret reference")
    client = botocore.session.get_session().create_client(
        "secretsmanager",
        region_name=environ.get("RELAY_AWS_REGION") or environ.get("AWS_REGION"),
        endpoint_url=environ.get("RELAY_AWS_ENDPOINT_URL") or None,
    )
    environ.update(secrets_from_manager(references, client=client))
    return sorted(references)


class LambdaApp:
    """The gateway app of one execution environment: built, its lifespan entered and waited
    for at the first invocation, left when the environment shuts down."""

    def __init__(
        self,
        make_app: Callable[[], FastAPI] | None = None,
        *,
        ready_timeout: float | None = None,
        name: str = "gateway lambda",
    ) -> None:
        self._make_app = make_app
        self._ready_timeout = ready_timeout
        self._name = name
        self._app: FastAPI | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._resources: AsyncExitStack | None = None
        self.cold_start_seconds: float | None = None

    @property
    def app(self) -> FastAPI:
        """The started app (started now, at the first use)."""
        if self._app is None:
            self._start()
        assert self._app is not None
        return self._app

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` on the app's event loop (the one its runtime was started on)."""
        _ = self.app
        assert self._loop is not None
        return self._loop.run_until_complete(work)

    def _start(self) -> None:
        began = time.perf_counter()
        load_secrets()
        make_app = self._make_app or _gateway_app
        app = make_app()
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._resources = AsyncExitStack()
        timeout = self._ready_timeout
        if timeout is None:
            timeout = float(os.environ.get(READY_TIMEOUT_VARIABLE, DEFAULT_READY_TIMEOUT))
        self._loop.run_until_complete(self._enter(app, timeout))
        self._app = app
        atexit.register(self.close)
        self.cold_start_seconds = time.perf_counter() - began
        log.info("%s: cold start took %.3fs", self._name, self.cold_start_seconds)

    async def _enter(self, app: FastAPI, ready_within: float) -> None:
        assert self._resources is not None
        await self._resources.enter_async_context(app.router.lifespan_context(app))
        try:
            async with asyncio.timeout(ready_within):
                await app.state.runtime.wait_ready()
        except TimeoutError:
            # Requests are answered 503 with Retry-After until start-up is done (StartGate).
            detail = app.state.runtime.starting_detail()
            log.warning("%s: not ready after %.0fs: %s", self._name, ready_within, detail)

    def close(self) -> None:
        """Leave the app's lifespan (the environment is shutting down)."""
        if self._loop is None or self._resources is None or self._loop.is_closed():
            return
        self._loop.run_until_complete(self._resources.aclose())
        self._loop.close()


class LambdaGateway:
    """A Lambda handler serving ``make_app()`` (built at the first invocation)."""

    def __init__(
        self,
        make_app: Callable[[], FastAPI] | None = None,
        *,
        ready_timeout: float | None = None,
    ) -> None:
        self._app = LambdaApp(make_app, ready_timeout=ready_timeout)
        self._adapter: Mangum | None = None

    @property
    def cold_start_seconds(self) -> float | None:
        return self._app.cold_start_seconds

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        if self._adapter is None:
            self._adapter = Mangum(self._app.app, lifespan="off")
        path = _path(event)
        if EVENT_STREAM.match(path):
            return _not_offered(path)
        if unquote(path) in PROBES:
            # Behind API Gateway no load balancer asks them, and they tell anyone the state of
            # every dependency: not served here (an operator invokes the function instead).
            return _answer(Problem(404, "Not Found", "No such route."), path)
        return self._adapter(event, context)

    def close(self) -> None:
        self._app.close()


def _path(event: Mapping[str, Any]) -> str:
    return str(event.get("rawPath") or event.get("path") or "")


def _not_offered(path: str) -> dict[str, Any]:
    problem = Problem(
        501,
        "Not offered on this edge",
        "Event streams (SSE) are not offered through API Gateway, which buffers responses. "
        "Poll GET /v1/tasks/{id}, or use a deployment with the ALB edge.",
    )
    return _answer(problem, path)


def _answer(problem: Problem, path: str) -> dict[str, Any]:
    return {
        "statusCode": problem.status,
        "headers": {"content-type": PROBLEM_JSON},
        "body": json.dumps(problem.body(instance=path)),
        "isBase64Encoded": False,
    }


def _gateway_app() -> FastAPI:
    return create_app()  # its settings are read now, after the secrets are in the environment


handler = LambdaGateway()
