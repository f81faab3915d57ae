"""Composition root: builds the tasks service from settings, or around an injected store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from relay_shared.http import create_service_app
from relay_shared.internal_auth import token_verifier
from relay_shared.migrations import KIT_INBOX, KIT_OUTBOX
from relay_shared.runtime import background
from relay_shared.runtime import ServiceRuntime
from tasks.api import router
from tasks.handlers import event_dispatcher
from tasks.models import IntakeRules
from tasks.repository import PostgresTaskStore
from tasks.service import TaskCancellation, TaskIntake, TaskLifecycle, TaskQueries, TaskService
from tasks.settings import TasksSettings
from tasks.store import TaskStore

MIGRATIONS = Path(__file__).parent / "migrations"


def build_service(settings: TasksSettings, store: TaskStore) -> TaskService:
    return TaskService(
        intake=TaskIntake(
            store,
            rules=IntakeRules(
                max_prompt_chars=settings.max_prompt_chars,
                allowed_models=settings.allowed_models,
                default_model=settings.default_model,
                default_limits=settings.default_limits(),
                limit_ranges=settings.limit_ranges(),
            ),
            idempotency_ttl=timedelta(hours=settings.idempotency_ttl_hours),
        ),
        queries=TaskQueries(store),
        cancellation=TaskCancellation(store),
        lifecycle=TaskLifecycle(store),
    )


def create_app(settings: TasksSettings | None = None, *, store: TaskStore | None = None) -> FastAPI:
    """The tasks app. With ``store`` (unit tests) it runs on that store alone: no database,
    no AWS, no consumer or outbox relay."""
    resolved = settings or TasksSettings()

    @asynccontextmanager
    async def start(app: FastAPI, runtime: ServiceRuntime) -> AsyncIterator[None]:
        if store is not None:
            app.state.service = build_service(resolved, store)
            yield
            return
        async with _connected(resolved, runtime) as service:
            app.state.service = service
            yield

    app = create_service_app(resolved, start=start, routers=[router])
    app.state.token_verifier = token_verifier(resolved)  # no key: no app, before it serves
    return app


@asynccontextmanager
async def _connected(
    settings: TasksSettings, runtime: ServiceRuntime
) -> AsyncIterator[TaskService]:
    """The service on PostgreSQL and AWS, with the outbox relay and the consumer running."""
    database = await runtime.database(KIT_OUTBOX, KIT_INBOX, MIGRATIONS)
    events = await runtime.aws_client("events")
    sqs = await runtime.aws_client("sqs")
    service = build_service(settings, PostgresTaskStore(database, subscriber=settings.service_name))
    consumer = await runtime.consumer(sqs, event_dispatcher(service))
    relay = runtime.outbox_relay(database, events)
    cleanup = runtime.housekeeping(database, outbox=True, inbox=True)
    # consumer first: on shutdown it finishes its messages, then the relay publishes
    async with background(
        [consumer, relay, cleanup], grace_seconds=settings.shutdown_grace_seconds
    ):
        yield service
