"""Composition root: builds the notifier from settings; tests swap the runtime for fakes.

The production runtime migrates the schema (waiting for PostgreSQL), opens Redis and SQS, and
runs three background loops beside the HTTP server: the SQS consumer, the live feed (Redis
subscriber) and the hold sweeper.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from redis.asyncio import Redis

from notifier import api
from notifier.handlers import dispatcher
from notifier.live import LiveFeed, RedisTimelinePublisher
from notifier.repository import PostgresTimelineStore
from notifier.service import TimelineService
from notifier.settings import NotifierSettings
from notifier.stream import TimelineStream
from notifier.sweeper import HoldSweeper
from relay_shared.consumer import EventDispatcher
from relay_shared.http import create_service_app
from relay_shared.internal_auth import token_verifier
from relay_shared.readiness import Check, CheckResult
from relay_shared.runtime import Loop, background
from relay_shared.runtime import ServiceRuntime

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class Notifier:
    """The assembled service: what routes, tests and the background runner need."""

    timelines: TimelineService
    stream: TimelineStream
    dispatcher: EventDispatcher
    loops: Sequence[Loop]
    live_feed: LiveFeed | None = None


Runtime = Callable[[NotifierSettings, ServiceRuntime], AbstractAsyncContextManager[Notifier]]


def redis_check(redis: Redis) -> Check:
    async def probe() -> CheckResult:
        await redis.ping()
        return CheckResult(True, "PING ok")

    return Check("redis", probe)


@asynccontextmanager
async def production_runtime(
    settings: NotifierSettings, runtime: ServiceRuntime
) -> AsyncIterator[Notifier]:
    """Waits for PostgreSQL and the queue; Redis is not waited for: without it the live feed
    keeps retrying and streams fall back to re-reading the timeline (/readyz says degraded)."""
    database = await runtime.database(MIGRATIONS)
    redis = Redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_connect_timeout=5,
        socket_keepalive=True,
        health_check_interval=30,  # notices a silently dead subscriber connection
    )
    runtime.on_stop(redis.aclose)
    runtime.add_check(redis_check(redis))
    sqs = await runtime.aws_client("sqs")
    store = PostgresTimelineStore(database)
    feed = LiveFeed(redis, settings.env)
    timelines = TimelineService(
        store,
        RedisTimelinePublisher(redis, settings.env),
        hold_seconds=settings.timeline_hold_seconds,
    )
    events = dispatcher(timelines)
    yield Notifier(
        timelines=timelines,
        stream=TimelineStream(store, feed, resync_seconds=settings.sse_resync_seconds),
        dispatcher=events,
        loops=[
            feed,
            HoldSweeper(timelines, interval_seconds=settings.timeline_sweep_interval_seconds),
            await runtime.consumer(sqs, events),
        ],
        live_feed=feed,
    )


def create_app(
    settings: NotifierSettings | None = None, *, runtime: Runtime | None = None
) -> FastAPI:
    settings = settings or NotifierSettings()
    build = runtime or production_runtime
    verifier = token_verifier(settings)

    @asynccontextmanager
    async def start(app: FastAPI, service_runtime: ServiceRuntime) -> AsyncIterator[None]:
        async with build(settings, service_runtime) as notifier:
            app.state.notifier = notifier
            async with background(notifier.loops, grace_seconds=settings.shutdown_grace_seconds):
                yield

    app = create_service_app(settings, start=start, routers=[api.router])
    app.state.settings = settings
    app.state.token_verifier = verifier
    return app
