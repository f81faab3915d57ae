"""Composition root: settings -> database, AWS clients, model provider, agent loop, consumer and
outbox relay. Tests swap collaborators in through ``create_app`` and ``build_service``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from agent.artifacts import S3StagingArea, StagingArea
from agent.handlers import event_dispatcher
from agent.providers import provider_from_settings
from agent.providers.base import ModelProvider
from agent.repository import PostgresRuns
from agent.service import AgentService, RunStore
from agent.settings import AgentSettings
from relay_shared.aws import aws_client
from relay_shared.http import create_service_app
from relay_shared.migrations import KIT_INBOX, KIT_OUTBOX
from relay_shared.runtime import background, migrate, open_database, outbox_relay, sqs_consumer

MIGRATIONS = Path(__file__).parent / "migrations"


def build_service(
    settings: AgentSettings,
    *,
    runs: RunStore,
    staging: StagingArea,
    provider: ModelProvider | None = None,
) -> AgentService:
    return AgentService(
        settings,
        runs=runs,
        provider=provider or provider_from_settings(settings),
        staging=staging,
    )


def create_app(
    settings: AgentSettings | None = None, *, provider: ModelProvider | None = None
) -> FastAPI:
    settings = settings or AgentSettings()
    # Resolve the provider now: an unknown RELAY_LLM_PROVIDER stops start-up with a clear error.
    provider = provider or provider_from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await migrate(settings, KIT_OUTBOX, KIT_INBOX, MIGRATIONS)
        database = open_database(settings)
        await database.open()
        try:
            async with (
                aws_client(settings, "events") as events,
                aws_client(settings, "sqs") as sqs,
                aws_client(settings, "s3") as s3,
            ):
                service = build_service(
                    settings,
                    runs=PostgresRuns(database),
                    staging=S3StagingArea(s3, settings.artifacts_bucket),
                    provider=provider,
                )
                app.state.service = service
                consumer = await sqs_consumer(settings, sqs, event_dispatcher(service))
                relay = outbox_relay(settings, database, events)
                async with background(
                    [consumer, relay], grace_seconds=settings.shutdown_grace_seconds
                ):
                    yield
        finally:
            await database.close()

    return create_service_app(settings.service_name, lifespan=lifespan)
