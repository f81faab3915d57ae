"""Composition root: settings -> ports -> the tasks use cases -> HTTP app and loops.

In production the port is PostgreSQL (tasks, outbox and inbox), and the SQS consumer, the
outbox relay and housekeeping run beside the HTTP server. Unit tests pass
``ports=given(fakes.ports())``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from relay_shared.composition import OpenPorts, compose
from relay_shared.http import create_service_app
from relay_shared.internal_auth import token_verifier
from relay_shared.loops import Loop
from relay_shared.migrations import KIT_INBOX, KIT_OUTBOX
from relay_shared.runtime import ServiceRuntime
from tasks.api import router
from tasks.handlers import event_dispatcher
from tasks.models import IntakeRules
from tasks.ports import Ports
from tasks.repository import PostgresTaskStore
from tasks.service import (
    TaskCancellation,
    TaskInput,
    TaskIntake,
    TaskLifecycle,
    TaskQueries,
    TaskService,
)
from tasks.settings import TasksSettings

MIGRATIONS = Path(__file__).parent / "migrations"


async def open_ports(settings: TasksSettings, runtime: ServiceRuntime) -> Ports:
    """PostgreSQL (migrated; waited for), SQS and EventBridge, closed when the service stops."""
    database = await runtime.database(KIT_OUTBOX, KIT_INBOX, MIGRATIONS)
    events = await runtime.aws_client("events")
    sqs = await runtime.aws_client("sqs")

    async def loops(service: TaskService) -> Sequence[Loop]:
        # consumer first: on shutdown it finishes its messages, then the relay publishes
        return [
            await runtime.consumer(sqs, event_dispatcher(service)),
            runtime.outbox_relay(database, events),
            runtime.housekeeping(database, outbox=True, inbox=True),
        ]

    return Ports(store=PostgresTaskStore(database, subscriber=settings.service_name), loops=loops)


def build(settings: TasksSettings, ports: Ports) -> TaskService:
    """The use cases on ``ports``; no I/O."""
    return TaskService(
        intake=TaskIntake(
            ports.store,
            rules=IntakeRules(
                max_prompt_chars=settings.max_prompt_chars,
                allowed_models=settings.allowed_models,
                default_model=settings.default_model,
                default_limits=settings.default_limits(),
                limit_ranges=settings.limit_ranges(),
            ),
            idempotency_ttl=timedelta(hours=settings.idempotency_ttl_hours),
            clock=ports.clock,
        ),
        queries=TaskQueries(ports.store),
        cancellation=TaskCancellation(ports.store),
        input=TaskInput(
            ports.store,
            max_chars=settings.max_input_chars,
            catch_up_seconds=settings.input_catch_up_seconds,
        ),
        lifecycle=TaskLifecycle(ports.store),
    )


def create_app(
    settings: TasksSettings | None = None,
    *,
    ports: OpenPorts[TasksSettings, Ports] = open_ports,
) -> FastAPI:
    settings = settings or TasksSettings()
    app = create_service_app(settings, start=compose(settings, ports, build), routers=[router])
    app.state.token_verifier = token_verifier(settings)  # no key: no app, before it serves
    return app
