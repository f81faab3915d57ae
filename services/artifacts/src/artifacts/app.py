"""Composition root: settings -> infrastructure -> use cases -> HTTP app, consumer, outbox relay.

Tests pass ``infrastructure`` to swap PostgreSQL and S3 for in-memory fakes (artifacts.memory).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from artifacts.api import router
from artifacts.handlers import event_dispatcher
from artifacts.repository import Artifacts, PostgresArtifacts
from artifacts.service import ArtifactDownloads, ArtifactPublishing
from artifacts.settings import ArtifactsSettings
from artifacts.storage import DownloadLinks, ObjectStore, S3DownloadLinks, S3ObjectStore
from relay_shared.consumer import EventDispatcher
from relay_shared.http import create_service_app
from relay_shared.internal_auth import token_verifier
from relay_shared.migrations import KIT_INBOX, KIT_OUTBOX
from relay_shared.runtime import Loop, background
from relay_shared.runtime import ServiceRuntime

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
async def connect(
    settings: ArtifactsSettings, runtime: ServiceRuntime
) -> AsyncIterator[Infrastructure]:
    """PostgreSQL (migrated; waited for), S3, SQS and EventBridge, closed when the service
    stops."""
    database = await runtime.database(KIT_OUTBOX, KIT_INBOX, MIGRATIONS)
    s3 = await runtime.aws_client("s3")
    sqs = await runtime.aws_client("sqs")
    events = await runtime.aws_client("events")
    # The client that signs download URLs: its endpoint is where clients reach S3 (the
    # signature covers the host), which may differ from the one services use.
    links_s3 = await runtime.aws_client("s3", endpoint_url=settings.s3_public_endpoint_url)

    async def event_loops(dispatcher: EventDispatcher) -> Sequence[Loop]:
        return [
            await runtime.consumer(sqs, dispatcher),
            runtime.outbox_relay(database, events),
            runtime.housekeeping(database, outbox=True, inbox=True),
        ]

    yield Infrastructure(
        artifacts=PostgresArtifacts(database),
        objects=S3ObjectStore(s3),
        links=S3DownloadLinks(links_s3),
        event_loops=event_loops,
    )


def create_app(
    settings: ArtifactsSettings | None = None,
    *,
    infrastructure: InfrastructureFactory | None = None,
) -> FastAPI:
    """``infrastructure`` (unit tests) replaces PostgreSQL, S3 and the event loops."""
    settings = settings or ArtifactsSettings()
    verifier = token_verifier(settings)

    @asynccontextmanager
    async def start(app: FastAPI, runtime: ServiceRuntime) -> AsyncIterator[None]:
        opened = connect(settings, runtime) if infrastructure is None else infrastructure(settings)
        async with opened as infra:
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

    app = create_service_app(settings, start=start, routers=[router])
    app.state.token_verifier = verifier
    return app
