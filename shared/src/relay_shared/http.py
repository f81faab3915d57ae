"""The HTTP app every service builds: problem responses, ``/healthz``, ``/readyz`` and the gate
that answers 503 while the service is still starting."""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.importer import import_from_string

from relay_shared.logs import configure_logging, register_secret
from relay_shared.problems import Problem, install_problem_handlers, problem_response
from relay_shared.runtime import ServiceRuntime, Start
from relay_shared.settings import ServiceSettings
from relay_shared.sockets import TRY_AGAIN_LATER
from relay_shared.telemetry import NO_FASTAPI_TELEMETRY, configure_telemetry, instrument_app

PROBES = frozenset({"/healthz", "/readyz"})


def create_service_app(
    settings: ServiceSettings,
    *,
    start: Start,
    routers: Sequence[APIRouter] = (),
    public: bool = False,
    docs: bool = True,
) -> FastAPI:
    """The service's app; ``start`` builds the service (see runtime.ServiceRuntime) while the
    app already answers. Internal services publish no OpenAPI UI; the gateway
    (``public=True``) does, unless ``docs`` is false (its RELAY_PUBLIC_API_DOCS)."""
    service = settings.service_name
    runtime = ServiceRuntime(settings, start)
    docs = public and docs
    app = FastAPI(
        title=f"Relay {service}",
        lifespan=runtime.lifespan,
        docs_url="/docs" if docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
        telemetry=NO_FASTAPI_TELEMETRY,
    )
    app.state.runtime = runtime
    install_problem_handlers(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers, whatever its dependencies do."""
        return {"status": "ok", "service": service}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        """Readiness: 200 when every dependency check passes, else 503 and which failed."""
        report = await runtime.readiness()
        return JSONResponse(
            report.body(service),
            status_code=200 if report.ready else 503,
            headers=None if report.ready else {"Cache-Control": "no-store"},
        )

    for router in routers:
        app.include_router(router)
    instrument_app(app)
    open_paths = PROBES | {p for p in (app.docs_url, app.openapi_url) if p}
    app.add_middleware(StartGate, runtime=runtime, open_paths=open_paths)
    return app


class StartGate:
    """Until start-up is done, every route but the probes answers 503 with Retry-After (a
    WebSocket is refused with 1013), instead of failing on half-built state."""

    def __init__(self, app: ASGIApp, *, runtime: ServiceRuntime, open_paths: frozenset[str]):
        self.app = app
        self.runtime = runtime
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] not in {"http", "websocket"}
            or self.runtime.phase in {"ready", "stopping"}
            or scope["path"] in self.open_paths
        ):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": TRY_AGAIN_LATER})
            return
        response = problem_response(self.problem(), scope["path"])
        await response(scope, receive, send)

    def problem(self) -> Problem:
        runtime = self.runtime
        if runtime.phase == "failed":
            return Problem(503, "Service Unavailable", "The service failed to start.")
        return Problem(
            503,
            "Service starting",
            f"Service starting: {runtime.starting_detail()}. Try again shortly.",
            headers={"Retry-After": str(runtime.retry_after_seconds())},
        )


def register_settings_secrets(settings: ServiceSettings) -> None:
    """Mask every secret setting (keys, connection URLs) in log lines."""
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            secret = value.get_secret_value()
            if "://" in secret:  # a connection URL: only its password is secret
                secret = urlsplit(secret).password or ""
            register_secret(secret)


def freeze_heap() -> None:
    """Move everything alive once start-up is done (modules, the app, pydantic schemas, the AWS
    clients' service models: a few hundred thousand objects) out of the garbage collector's
    reach. Without it every full collection walks them all, 90-130 ms during which the process
    answers nothing (seen as latency spikes under steady load: docs/benchmarks.md, intake);
    after it a full collection walks only what came later, ~2 ms. Only for a service process
    (``serve``): frozen objects are never collected, and a test process builds many apps."""
    gc.collect()
    gc.freeze()


def collect_young_less_often(allocations: int) -> None:
    """Collect the young generation every ``allocations`` allocations instead of Python's 700
    (0 keeps the current threshold). What a young collection finds alive moves on to older
    generations, and each object moved adds to the next full collection, which walks every
    live object made since start-up: with a thousand open streams, 300,000 of them and
    100-300 ms during which the process answers nothing. Every event fanned out to those
    streams is in flight (messages, frames, coroutines) for the ~100 ms its writes take, so a
    young collection every 700 allocations moved some of it on every time, and a full
    collection came every 20 events or so. Collected 14 times less often, most of it has died
    by then; garbage in cycles still counts towards the threshold, so it is still collected
    (docs/adr/0020-intake-hot-path.md)."""
    if allocations:
        _, older, oldest = gc.get_threshold()
        gc.set_threshold(allocations, older, oldest)


def serve(app_factory: str | Callable[[], FastAPI], settings: ServiceSettings) -> None:
    """Run a service's HTTP server (``python -m <service>``); SIGTERM stops it gracefully.

    The app is built before anything serves, so a settings error stops the process at once.
    If start-up fails later (a missing secret, a bug), the process exits with status 1.
    """
    configure_logging(settings.service_name, settings.log_level, fmt=settings.log_format)
    register_settings_secrets(settings)
    telemetry = configure_telemetry(settings)
    factory: Any = import_from_string(app_factory) if isinstance(app_factory, str) else app_factory
    app: FastAPI = factory()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.http_host,
            port=settings.http_port,
            log_config=None,  # keep configure_logging's handlers
            access_log=False,
            timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
            timeout_keep_alive=settings.http_keep_alive_seconds,
            ws_ping_interval=settings.ws_ping_interval_seconds,
            ws_ping_timeout=settings.ws_ping_interval_seconds,
            ws_max_size=settings.ws_max_message_bytes,
            ws_per_message_deflate=False,  # event frames are small; compression costs CPU
        )
    )
    runtime: ServiceRuntime = app.state.runtime

    def stop_serving() -> None:
        server.should_exit = True  # a graceful stop, as on SIGTERM

    runtime.on_failure = stop_serving

    def when_ready() -> None:
        freeze_heap()
        collect_young_less_often(settings.gc_young_threshold)

    runtime.on_ready = when_ready
    try:
        server.run()
    finally:
        telemetry.shutdown()  # flush the last spans and metrics
    if runtime.failure is not None:
        raise SystemExit(1)
