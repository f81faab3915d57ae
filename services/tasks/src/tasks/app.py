"""Composition root: builds the tasks service from settings, or around an injected store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from relay_shared.aws import aws_client
from relay_shared.http import create_service_app
from relay_shared.internal_auth import token_verifier
from relay_shared.migrations import KIT_INBOX, KIT_OUTBOX
from relay_shared.runtime import background, migrate, open_database, outbox_relay, sqs_consumer
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
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.token_verifier = token_verifier(resolved)
        if store is not None:
            app.state.service = build_service(resolved, store)
            yield
            return
        async with _connected(resolved) as service:
            app.state.service = service
            yield

    return create_service_app(resolved.service_name, lifespan=lifespan, routers=[router])


@asynccontextmanager
async def _connected(settings: TasksSettings) -> AsyncIterator[TaskService]:
    """The service on PostgreSQL and AWS, with the outbox relay and the consumer running."""
    await migrate(settings, KIT_OUTBOX, KIT_INBOX, MIGRATIONS)
    database = open_database(settings)
    await database.open()
    try:
        async with (
            aws_client(settings, "events") as events,
            aws_client(settings, "sqs") as sqs,
        ):
            service = build_service(
                settings, PostgresTaskStore(database, subscriber=settings.service_name)
            )
            relay = outbox_relay(settings, database, events)
            consumer = await sqs_consumer(settings, sqs, event_dispatcher(service))
            # consumer first: on shutdown it finishes its messages, then the relay publishes
            async with background([consumer, relay], grace_seconds=settings.shutdown_grace_seconds):
                yield service
    finally:
        await database.close()
