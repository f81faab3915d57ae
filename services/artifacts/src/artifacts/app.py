"""Composition root: settings -> infrastructure -> use cases -> HTTP app, consumer, outbox relay.

Tests pass ``infrastructure`` to swap PostgreSQL and S3 for in-memory fakes (artifacts.memory).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from artifacts.api import router
from artifacts.handlers import event_dispatcher
from artifacts.repository import Artifacts, PostgresArtifacts
from artifacts.service import ArtifactDownloads, ArtifactPublishing
from artifacts.settings import ArtifactsSettings
from artifacts.storage import DownloadLinks, ObjectStore, S3DownloadLinks, S3ObjectStore
from relay_shared.aws import aws_client
from relay_shared.consumer import EventDispatcher
from relay_shared.http import create_service_app
from relay_shared.internal_auth import token_verifier
from relay_shared.migrations import KIT_INBOX, KIT_OUTBOX
from relay_shared.runtime import (
    Loop,
    background,
    migrate,
    open_database,
    outbox_relay,
    sqs_consumer,
)

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True)
class Infrastructure:
    """What the service needs from outside the process."""

    artifacts: Artifacts
    objects: ObjectStore
    links: DownloadLinks
    # the loops that feed events in and publish them out (SQS consumer, outbox relay)
    event_loops: Callable[[EventDispatcher], Awaitable[Sequence[Loop]]]


InfrastructureFactory = Callable[[ArtifactsSettings], AbstractAsyncContextManager[Infrastructure]]


@asynccontextmanager
async def connect(settings: ArtifactsSettings) -> AsyncIterator[Infrastructure]:
    """PostgreSQL (migrated), S3, SQS and EventBridge, closed on exit."""
    await migrate(settings, KIT_OUTBOX, KIT_INBOX, MIGRATIONS)
    database = open_database(settings)
    await database.open()
    try:
        async with AsyncExitStack() as stack:
            s3 = await stack.enter_async_context(aws_client(settings, "s3"))
            sqs = await stack.enter_async_context(aws_client(settings, "sqs"))
            events = await stack.enter_async_context(aws_client(settings, "events"))
            links_s3 = await stack.enter_async_context(presigning_s3(settings))

            async def event_loops(dispatcher: EventDispatcher) -> Sequence[Loop]:
                return [
                    await sqs_consumer(settings, sqs, dispatcher),
                    outbox_relay(settings, database, events),
                ]

            yield Infrastructure(
                artifacts=PostgresArtifacts(database),
                objects=S3ObjectStore(s3),
                links=S3DownloadLinks(links_s3),
                event_loops=event_loops,
            )
    finally:
        await database.close()


def presigning_s3(settings: ArtifactsSettings) -> AbstractAsyncContextManager[Any]:
    """The S3 client that signs download URLs: its endpoint is where clients reach S3 (the
    signature covers the host), which may differ from the one services use."""
    return aws_client(settings, "s3", endpoint_url=settings.s3_public_endpoint_url)


def create_app(
    settings: ArtifactsSettings | None = None,
    *,
    infrastructure: InfrastructureFactory = connect,
) -> FastAPI:
    settings = settings or ArtifactsSettings()
    verifier = token_verifier(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with infrastructure(settings) as infra:
            publishing = ArtifactPublishing(
                infra.artifacts, infra.objects, bucket=settings.artifacts_bucket
            )
            app.state.downloads = ArtifactDownloads(
                infra.artifacts,
                infra.links,
                bucket=settings.artifacts_bucket,
                ttl_seconds=settings.download_url_ttl_seconds,
            )
            loops = await infra.event_loops(event_dispatcher(publishing))
            async with background(loops, grace_seconds=settings.shutdown_grace_seconds):
                yield

    app = create_service_app(settings.service_name, lifespan=lifespan, routers=[router])
    app.state.token_verifier = verifier
    return app
