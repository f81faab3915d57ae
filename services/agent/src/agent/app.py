"""Composition root: settings -> database, AWS clients, model provider, agent loop, the two
consumers (tasks on the main queue, cancel requests on the control queue), the recovery
sweeper, the cancel listener, the outbox relay and housekeeping. Tests swap collaborators in
through ``create_app`` and ``build_service``."""

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
from agent.recovery import RecoverySweeper
from agent.repository import PostgresRuns
from agent.retries import Clock, Sleep
from agent.running import RunningAttempts
from agent.runs import RunStore
from agent.service import AgentService
from agent.settings import AgentSettings
from agent.tools import TOOLS, Tool
from relay_shared.http import create_service_app
from relay_shared.migrations import KIT_INBOX, KIT_OUTBOX
from relay_shared.runtime import Loop, background
from relay_shared.runtime import ServiceRuntime

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
    # start-up with a clear error; start-up resolves its credentials when it opens it.
    if provider is None:
        check_provider_settings(settings)

    @asynccontextmanager
    async def start(app: FastAPI, runtime: ServiceRuntime) -> AsyncIterator[None]:
        database = await runtime.database(KIT_OUTBOX, KIT_INBOX, MIGRATIONS)
        # Credentials fetched over the network (Secrets Manager) are waited for like any
        # dependency; a missing or unreadable secret fails start-up.
        model = await runtime.until_available(
            "the model provider's credentials",
            lambda: runtime.enter(open_provider(settings, provider=provider)),
        )
        events = await runtime.aws_client("events")
        sqs = await runtime.aws_client("sqs")
        s3 = await runtime.aws_client("s3")
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
        consumer = await runtime.consumer(sqs, dispatcher)
        # Cancels have their own queue: on the main one they would wait behind the very runs
        # they are meant to stop.
        control = await runtime.consumer(sqs, dispatcher, queue_name=settings.control_queue_name)
        recovery = RecoverySweeper(
            runs,
            service,
            interval_seconds=settings.recovery_interval_seconds,
            grace_seconds=settings.recovery_grace_seconds,
            concurrency=settings.recovery_concurrency,
            shutdown_grace_seconds=settings.shutdown_grace_seconds,
        )
        app.state.recovery = recovery
        listener = CancelListener(database, runs.channel, running)
        app.state.cancel_listener = listener
        # Stopped in this order: runs finish (or are handed back) within the grace period while
        # cancel requests still reach them; then the relay publishes what they committed.
        loops: list[Loop] = [consumer, control]
        if settings.recovery_concurrency:
            loops.append(recovery)
        loops += [
            listener,
            runtime.outbox_relay(database, events),
            runtime.housekeeping(database, outbox=True, inbox=True),
        ]
        async with background(loops, grace_seconds=settings.shutdown_grace_seconds):
            yield

    return create_service_app(settings, start=start)
