"""Composition root: the agent's ports (PostgreSQL, S3, the model provider; its consumers,
sweeper, listener and relay), the use cases built on them, and the HTTP app around both."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import FastAPI

from agent.artifacts import S3StagingArea
from agent.cancel_listener import CancelListener
from agent.cancellation import Cancellation
from agent.handlers import event_dispatcher
from agent.ports import Ports
from agent.providers import check_provider_settings, open_provider
from agent.recording import AttemptRecorder
from agent.recovery import Recovery, RecoverySweeper
from agent.repository import PostgresRuns
from agent.retries import RetryPolicy
from agent.runner import AttemptRunner
from agent.running import RunningAttempts
from agent.service import AgentService
from agent.settings import AgentSettings
from agent.waits import WaitExpiry, WaitExpirySweeper
from agent.work import AttemptWork
from relay_shared.composition import OpenPorts, compose
from relay_shared.http import create_service_app
from relay_shared.loops import Loop
from relay_shared.migrations import KIT_INBOX, KIT_OUTBOX
from relay_shared.runtime import ServiceRuntime

MIGRATIONS = Path(__file__).parent / "migrations"


async def open_ports(settings: AgentSettings, runtime: ServiceRuntime) -> Ports:
    """PostgreSQL (runs and outbox), S3 staging and the configured model provider, opened
    through the runtime; the loops consume both queues, recover, listen and publish."""
    database = await runtime.database(KIT_OUTBOX, KIT_INBOX, MIGRATIONS)
    # Credentials fetched over the network (Secrets Manager) are waited for like any
    # dependency; a missing or unreadable secret fails start-up.
    provider = await runtime.until_available(
        "the model provider's credentials", lambda: runtime.enter(open_provider(settings))
    )
    events = await runtime.aws_client("events")
    sqs = await runtime.aws_client("sqs")
    s3 = await runtime.aws_client("s3")
    runs = PostgresRuns(database)

    async def loops(service: AgentService) -> Sequence[Loop]:
        dispatcher = event_dispatcher(service)
        consumer = await runtime.consumer(sqs, dispatcher)
        # Cancels have their own queue: on the main one they would wait behind the very runs
        # they are meant to stop.
        control = await runtime.consumer(sqs, dispatcher, queue_name=settings.control_queue_name)
        recovery: list[Loop] = []
        if settings.recovery_concurrency:  # 0 turns recovery off
            recovery.append(RecoverySweeper(service.recovery, settings))
        # Stopped in this order: runs finish (or are handed back) within the grace period while
        # cancel requests still reach them; then the relay publishes what they committed.
        return [
            consumer,
            control,
            *recovery,
            WaitExpirySweeper(service.waits, settings),
            CancelListener(database, runs.channel, service.running),
            runtime.outbox_relay(database, events),
            runtime.housekeeping(database, outbox=True, inbox=True),
        ]

    return Ports(
        runs=runs,
        staging=S3StagingArea(s3, settings.artifacts_bucket),
        provider=provider,
        loops=loops,
    )


def build(settings: AgentSettings, ports: Ports) -> AgentService:
    """The use cases on ``ports``; no I/O."""
    running = RunningAttempts()
    recorder = AttemptRecorder(ports.runs)
    retry = RetryPolicy(
        settings.provider_max_retries,
        settings.provider_retry_base_seconds,
        settings.provider_retry_max_seconds,
        sleep=ports.sleep,
        clock=ports.clock,
    )
    work = AttemptWork(
        settings,
        provider=ports.provider,
        tools=ports.tools,
        staging=ports.staging,
        retry=retry,
        recorder=recorder,
        running=running,
        clock=ports.clock,
    )
    runner = AttemptRunner(
        settings, runs=ports.runs, work=work, recorder=recorder, running=running, clock=ports.clock
    )
    return AgentService(
        runner=runner,
        cancellation=Cancellation(ports.runs, running),
        recovery=Recovery(settings, runs=ports.runs, runner=runner),
        waits=WaitExpiry(ports.runs),
        running=running,
    )


def create_app(
    settings: AgentSettings | None = None,
    *,
    ports: OpenPorts[AgentSettings, Ports] = open_ports,
) -> FastAPI:
    settings = settings or AgentSettings()
    # Check the provider's settings now: an unknown RELAY_LLM_PROVIDER or a missing setting stops
    # start-up with a clear error; open_ports resolves its credentials when it opens it.
    check_provider_settings(settings)
    return create_service_app(settings, start=compose(settings, ports, build))
