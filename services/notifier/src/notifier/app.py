"""Composition root: settings -> ports -> the notifier's use cases -> HTTP app and loops.

In production the ports are PostgreSQL (timelines), Redis (live fan-out) and SQS, and three
loops run beside the HTTP server: the live feed (Redis subscriber), the hold sweeper and the
SQS consumer. Unit tests pass ``ports=given(fakes.ports())``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import FastAPI

from notifier.api import router
from notifier.handlers import dispatcher
from notifier.live import RedisLiveFeed, RedisTimelinePublisher
from notifier.ports import Ports
from notifier.repository import PostgresTimelineStore
from notifier.service import Notifier, TimelineService, utc_now
from notifier.settings import NotifierSettings
from notifier.stream import TimelineStream
from relay_shared.composition import OpenPorts, compose
from relay_shared.http import create_service_app
from relay_shared.internal_auth import token_verifier
from relay_shared.loops import Loop, Periodic
from relay_shared.runtime import ServiceRuntime

MIGRATIONS = Path(__file__).parent / "migrations"


async def open_ports(settings: NotifierSettings, runtime: ServiceRuntime) -> Ports:
    """Waits for PostgreSQL and the queue; Redis is not waited for: without it the live feed
    keeps retrying and streams fall back to re-reading the timeline (/readyz says degraded)."""
    database = await runtime.database(MIGRATIONS)
    redis = runtime.redis(settings.redis_url)
    sqs = await runtime.aws_client("sqs")
    feed = RedisLiveFeed(redis, settings.env)

    async def loops(notifier: Notifier) -> Sequence[Loop]:
        return [
            feed,
            Periodic(
                "hold sweeper",
                notifier.timelines.release_overdue,
                interval_seconds=settings.timeline_sweep_interval_seconds,
            ),
            await runtime.consumer(sqs, dispatcher(notifier)),
        ]

    return Ports(
        store=PostgresTimelineStore(database),
        live=RedisTimelinePublisher(redis, settings.env),
        feed=feed,
        clock=utc_now,
        loops=loops,
    )


def build(settings: NotifierSettings, ports: Ports) -> Notifier:
    """The use cases on ``ports``; no I/O."""
    return Notifier(
        timelines=TimelineService(
            ports.store,
            ports.live,
            hold_seconds=settings.timeline_hold_seconds,
            clock=ports.clock,
        ),
        stream=TimelineStream(ports.store, ports.feed, resync_seconds=settings.sse_resync_seconds),
        heartbeat_seconds=settings.sse_heartbeat_seconds,
        max_subscriptions=settings.ws_max_subscriptions,
        send_queue_frames=settings.ws_send_queue_frames,
        send_timeout_seconds=settings.ws_send_timeout_seconds,
    )


def create_app(
    settings: NotifierSettings | None = None,
    *,
    ports: OpenPorts[NotifierSettings, Ports] = open_ports,
) -> FastAPI:
    settings = settings or NotifierSettings()
    app = create_service_app(settings, start=compose(settings, ports, build), routers=[router])
    app.state.token_verifier = token_verifier(settings)
    return app
