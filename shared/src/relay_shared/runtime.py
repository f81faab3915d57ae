"""Pieces every composition root (``app.py``) assembles: migrations, the outbox relay, the SQS
consumer, housekeeping, and running them beside the HTTP server with a graceful stop.

``relay_shared.startup.ServiceRuntime`` puts them together with waiting for dependencies;
composition roots use that, and these functions are its building blocks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from relay_shared.consumer import MessageHandler, SqsConsumer
from relay_shared.db import Database
from relay_shared.housekeeping import Housekeeping
from relay_shared.migrations import apply_migrations
from relay_shared.outbox import OutboxRelay
from relay_shared.publisher import EventBridgePublisher
from relay_shared.settings import ServiceSettings

log = logging.getLogger(__name__)

STOP_ALLOWANCE_SECONDS = 5.0


class Loop(Protocol):
    async def run(self) -> None: ...

    def stop(self) -> None: ...


async def migrate(settings: ServiceSettings, *sources: Path) -> None:
    applied = await asyncio.to_thread(
        apply_migrations,
        settings.database_url.get_secret_value(),
        settings.db_schema,
        *sources,
        connect_timeout=settings.db_connect_timeout,
    )
    if applied:
        log.info("applied migrations: %s", ", ".join(applied))


def open_database(settings: ServiceSettings) -> Database:
    return Database(
        settings.database_url.get_secret_value(),
        settings.db_schema,
        max_size=settings.db_pool_max,
        acquire_timeout=settings.db_acquire_timeout,
        connect_timeout=settings.db_connect_timeout,
    )


def outbox_relay(settings: ServiceSettings, database: Database, events_client: Any) -> OutboxRelay:
    return OutboxRelay(
        database,
        EventBridgePublisher(events_client, settings.event_bus_name),
        schema=settings.db_schema,
        poll_interval=settings.outbox_poll_interval,
    )


def housekeeping(
    settings: ServiceSettings, database: Database, *, outbox: bool, inbox: bool
) -> Housekeeping:
    """Cleanup of the kit tables this service has (``outbox``, ``inbox``) and the lag watch."""
    return Housekeeping(
        database,
        outbox_retention=timedelta(hours=settings.outbox_retention_hours) if outbox else None,
        inbox_retention=timedelta(days=settings.inbox_retention_days) if inbox else None,
        interval_seconds=settings.housekeeping_interval_seconds,
        lag_warn_seconds=settings.outbox_lag_warn_seconds,
    )


def sqs_consumer(
    settings: ServiceSettings,
    sqs_client: Any,
    queue_url: str,
    handler: MessageHandler,
    *,
    queue_name: str | None = None,
    concurrency: int | None = None,
) -> SqsConsumer:
    """A consumer of the service's main queue, or of ``queue_name`` (e.g. its control queue)."""
    name = queue_name or settings.queue_name
    return SqsConsumer(
        sqs_client,
        queue_url,
        handler,
        concurrency=concurrency or settings.consumer_concurrency,
        wait_seconds=settings.consumer_wait_seconds,
        visibility_timeout=settings.consumer_visibility_timeout,
        grace_seconds=settings.shutdown_grace_seconds,
        max_deferrals=settings.consumer_max_deferrals,
        name=name,
    )


@asynccontextmanager
async def background(loops: Sequence[Loop], *, grace_seconds: float = 30.0) -> AsyncIterator[None]:
    """Run ``loops`` while the body runs; on exit stop them one at a time, in the order given.

    Pass consumers before the outbox relay: a consumer stops taking messages and finishes what it
    holds within the grace period, and only then is the relay stopped, so the events that work
    committed are published before the process exits.

    A loop that dies on its own takes the process down (SIGTERM to itself), so the supervisor
    or the container runtime restarts it rather than leaving a service that answers /healthz
    but no longer works.
    """
    tasks = [asyncio.create_task(loop.run(), name=type(loop).__name__) for loop in loops]
    stopping = False

    def on_done(task: asyncio.Task[None]) -> None:
        if stopping or task.cancelled():
            return
        error = task.exception()
        log.critical(
            "background loop %s ended unexpectedly: %r", task.get_name(), error, exc_info=error
        )
        os.kill(os.getpid(), signal.SIGTERM)

    for task in tasks:
        task.add_done_callback(on_done)
    try:
        yield
    finally:
        stopping = True
        # a loop's own grace period is grace_seconds; the allowance covers its cleanup after it
        deadline = asyncio.get_running_loop().time() + grace_seconds + STOP_ALLOWANCE_SECONDS
        for loop, task in zip(loops, tasks, strict=True):
            loop.stop()
            remaining = max(0.0, deadline - asyncio.get_running_loop().time())
            with contextlib.suppress(TimeoutError, Exception):
                await asyncio.wait_for(asyncio.shield(task), timeout=remaining)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
