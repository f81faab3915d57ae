"""Composition root: settings -> database, AWS clients, model provider, agent loop, the two
consumers (tasks on the main queue, cancel requests on the control queue), the cancel listener
and the outbox relay. Tests swap collaborators in through ``create_app`` and ``build_service``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from agent.artifacts import S3StagingArea, StagingArea
from agent.cancellation import CancelListener
from agent.handlers import event_dispatcher
from agent.providers import check_provider_settings, open_provider
from agent.providers.base import ModelProvider
from agent.repository import PostgresRuns
from agent.retries import Clock, Sleep
from agent.running import RunningAttempts
from agent.runs import RunStore
from agent.service import AgentService
from agent.settings import AgentSettings
from agent.tools import TOOLS, Tool
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
    provider: ModelProvider,
    running: RunningAttempts | None = None,
    tools: Mapping[str, Tool] = TOOLS,
    sleep: Sleep = asyncio.sleep,
    clock: Clock = time.monotonic,
) -> AgentService:
    return AgentService(
        settings,
        runs=runs,
        provider=provider,
        staging=staging,
        running=running,
        tools=tools,
        sleep=sleep,
        clock=clock,
    )


def create_app(
    settings: AgentSettings | None = None,
    *,
    provider: ModelProvider | None = None,
    tools: Mapping[str, Tool] = TOOLS,
) -> FastAPI:
    settings = settings or AgentSettings()
    # Check the provider's settings now: an unknown RELAY_LLM_PROVIDER or a missing setting stops
    # start-up with a clear error; the lifespan resolves its credentials when it opens it.
    if provider is None:
        check_provider_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await migrate(settings, KIT_OUTBOX, KIT_INBOX, MIGRATIONS)
        database = open_database(settings)
        await database.open()
        try:
            async with (
                open_provider(settings, provider=provider) as model,
                aws_client(settings, "events") as events,
                aws_client(settings, "sqs") as sqs,
                aws_client(settings, "s3") as s3,
            ):
                runs = PostgresRuns(database)
                running = RunningAttempts()
                service = build_service(
                    settings,
                    runs=runs,
                    staging=S3StagingArea(s3, settings.artifacts_bucket),
                    provider=model,
                    running=running,
                    tools=tools,
                )
                dispatcher = event_dispatcher(service)
                app.state.service = service
                app.state.dispatcher = dispatcher
                consumer = await sqs_consumer(settings, sqs, dispatcher)
                # Cancels have their own queue: on the main one they would wait behind the
                # very runs they are meant to stop.
                control = await sqs_consumer(
                    settings, sqs, dispatcher, queue_name=settings.control_queue_name
                )
                listener = CancelListener(database, runs.channel, running)
                app.state.cancel_listener = listener
                relay = outbox_relay(settings, database, events)
                # Stopped in this order: runs finish (or are handed back) within the grace
                # period while cancel requests still reach them; then the relay publishes
                # what they committed.
                async with background(
                    [consumer, control, listener, relay],
                    grace_seconds=settings.shutdown_grace_seconds,
                ):
                    yield
        finally:
            await database.close()

    return create_service_app(settings.service_name, lifespan=lifespan)
