"""The HTTP app every service builds: problem responses and ``/healthz``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI

from relay_shared.logs import configure_logging
from relay_shared.problems import install_problem_handlers
from relay_shared.settings import ServiceSettings


def create_service_app(
    service: str,
    *,
    lifespan: Any,
    routers: Sequence[APIRouter] = (),
    public: bool = False,
) -> FastAPI:
    """Internal services publish no OpenAPI UI; the gateway (``public=True``) does."""
    app = FastAPI(
        title=f"Relay {service}",
        lifespan=lifespan,
        docs_url="/docs" if public else None,
        redoc_url=None,
        openapi_url="/openapi.json" if public else None,
    )
    install_problem_handlers(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    for router in routers:
        app.include_router(router)
    return app


def serve(app_factory: str, settings: ServiceSettings) -> None:
    """Run a service's HTTP server (``python -m <service>``); SIGTERM stops it gracefully."""
    configure_logging(settings.service_name, settings.log_level)
    uvicorn.run(
        app_factory,
        factory=True,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,  # keep configure_logging's handlers
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
    )
