"""Pieces every composition root (``app.py``) assembles: migrations, the outbox relay, the SQS
consumer, and running them beside the HTTP server with a graceful stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

from relay_shared.aws import queue_url
from relay_shared.consumer import MessageHandler, SqsConsumer
from relay_shared.db import Database
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
    )
    if applied:
        log.info("applied migrations: %s", ", ".join(applied))


def open_database(settings: ServiceSettings) -> Database:
    return Database(
        settings.database_url.get_secret_value(),
        settings.db_schema,
        max_size=settings.db_pool_max,
        acquire_timeout=settings.db_acquire_timeout,
    )


def outbox_relay(settings: ServiceSettings, database: Database, events_client: Any) -> OutboxRelay:
    return OutboxRelay(
        database,
        EventBridgePublisher(events_client, settings.event_bus_name),
        schema=settings.db_schema,
        poll_interval=settings.outbox_poll_interval,
    )


async def sqs_consumer(
    settings: ServiceSettings,
    sqs_client: Any,
    handler: MessageHandler,
    *,
    queue_name: str | None = None,
    concurrency: int | None = None,
) -> SqsConsumer:
    """A consumer of the service's main queue, or of ``queue_name`` (e.g. its control queue)."""
    name = queue_name or settings.queue_name
    return SqsConsumer(
        sqs_client,
        await queue_url(sqs_client, name),
        handler,
        concurrency=concurrency or settings.consumer_concurrency,
        wait_seconds=settings.consumer_wait_seconds,
        visibility_timeout=settings.consumer_visibility_timeout,
        grace_seconds=settings.shutdown_grace_seconds,
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
        log.critical("background loop %s ended unexpectedly: %r", task.get_name(), task.exception())
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
