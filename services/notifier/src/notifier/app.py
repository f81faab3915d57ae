"""Composition root: settings -> ports -> the notifier's use cases -> HTTP app and loops.

In production the ports are PostgreSQL (timelines, webhooks), Redis (live fan-out), SQS and an
HTTP client for webhook deliveries, and these loops run beside the HTTP server: the live feed
(Redis subscriber), the hold sweeper, the webhook delivery worker and its log's housekeeping,
and the SQS consumer. Unit tests pass ``ports=given(fakes.ports())``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import partial
from pathlib import Path

from fastapi import FastAPI

from notifier.api import router
from notifier.delivery import DeliveryPolicy, DeliveryWorker
from notifier.edge import EdgeDelivery
from notifier.edge_aws import ApiGatewayPoster, DynamoEdgeConnections
from notifier.handlers import dispatcher
from notifier.live import PublishToAll, RedisLiveFeed, RedisTimelinePublisher
from notifier.ports import Ports
from notifier.repository import PostgresTimelineStore, PostgresWebhookStore
from notifier.sender import HttpWebhookSender
from notifier.service import Notifier, TimelineService, utc_now
from notifier.settings import NotifierSettings
from notifier.signing import SecretBox
from notifier.stream import TimelineStream
from notifier.webhooks import WebhookService
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
    sender = HttpWebhookSender(
        timeout_seconds=settings.webhooks_timeout_seconds,
        allow_private=settings.webhooks_allow_private,
        max_connections=settings.webhooks_concurrency,
    )
    runtime.on_stop(sender.aclose)
    webhooks = PostgresWebhookStore(database)
    edge_connections = edge_poster = None
    if settings.edge_connections_table and settings.edge_ws_endpoint:
        dynamodb = await runtime.aws_client("dynamodb", read_timeout=10)
        edge_connections = DynamoEdgeConnections(dynamodb, settings.edge_connections_table)
        management = await runtime.aws_client(
            "apigatewaymanagementapi", read_timeout=5, endpoint_url=settings.edge_ws_endpoint
        )
        edge_poster = ApiGatewayPoster(management)

    async def loops(notifier: Notifier) -> Sequence[Loop]:
        consumer = await runtime.consumer(sqs, dispatcher(notifier))

        async def sweep() -> None:
            await notifier.timelines.release_overdue(handed_back_until=consumer.handed_back_until)

        edge = notifier.edge
        edge_loops = (
            []
            if edge is None
            else [
                Periodic(
                    "WebSocket API resync",
                    edge.resync,
                    interval_seconds=settings.edge_resync_seconds,
                )
            ]
        )
        return [
            *edge_loops,
            feed,
            Periodic(
                "hold sweeper", sweep, interval_seconds=settings.timeline_sweep_interval_seconds
            ),
            notifier.deliveries,
            Periodic(
                "webhook log housekeeping",
                partial(_purge_finished, webhooks, settings.webhooks_retention_days),
                interval_seconds=3600,
            ),
            consumer,
        ]

    return Ports(
        store=PostgresTimelineStore(database),
        live=RedisTimelinePublisher(redis, settings.env),
        feed=feed,
        webhooks=webhooks,
        sender=sender,
        clock=utc_now,
        edge_connections=edge_connections,
        edge_poster=edge_poster,
        loops=loops,
    )


async def _purge_finished(store: PostgresWebhookStore, retention_days: float) -> None:
    await store.purge_finished(utc_now() - timedelta(days=retention_days))


def secret_box(settings: NotifierSettings) -> SecretBox | None:
    keys = settings.webhooks_encryption_keys
    return None if keys is None else SecretBox.from_setting(keys.get_secret_value())


def build(settings: NotifierSettings, ports: Ports) -> Notifier:
    """The use cases on ``ports``; no I/O."""
    box = secret_box(settings)
    deliveries = DeliveryWorker(
        ports.webhooks,
        ports.sender,
        box,
        policy=DeliveryPolicy(
            retry_delays=settings.webhooks_retry_delays,
            disable_after=timedelta(days=settings.webhooks_disable_after_days),
            secret_overlap=timedelta(seconds=settings.webhooks_secret_overlap_seconds),
            timeout_seconds=settings.webhooks_timeout_seconds,
            concurrency=settings.webhooks_concurrency,
            endpoint_concurrency=settings.webhooks_endpoint_concurrency,
            tenant_concurrency=settings.webhooks_tenant_concurrency,
            poll_interval_seconds=settings.webhooks_poll_interval_seconds,
        ),
        clock=ports.clock,
        env=settings.env,
    )
    stream = TimelineStream(ports.store, ports.feed, resync_seconds=settings.sse_resync_seconds)
    edge = None
    live = ports.live
    if ports.edge_connections is not None and ports.edge_poster is not None:
        edge = EdgeDelivery(
            ports.edge_connections,
            ports.edge_poster,
            ports.store,
            stream,
            clock=ports.clock,
            max_subscriptions=settings.ws_max_subscriptions,
        )
        live = PublishToAll(ports.live, edge)
    return Notifier(
        timelines=TimelineService(
            ports.store,
            live,
            hold_seconds=settings.timeline_hold_seconds,
            clock=ports.clock,
            on_deliveries_queued=deliveries.wake,
        ),
        stream=stream,
        webhooks=WebhookService(
            ports.webhooks,
            ports.sender,
            box,
            clock=ports.clock,
            secret_overlap_seconds=settings.webhooks_secret_overlap_seconds,
            max_endpoints=settings.webhooks_max_endpoints,
            wake=deliveries.wake,
        ),
        deliveries=deliveries,
        heartbeat_seconds=settings.sse_heartbeat_seconds,
        max_subscriptions=settings.ws_max_subscriptions,
        send_queue_frames=settings.ws_send_queue_frames,
        send_timeout_seconds=settings.ws_send_timeout_seconds,
        edge=edge,
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
