"""Composition root: settings -> ports -> use cases -> HTTP app, consumer, outbox relay.

In production the ports are PostgreSQL and S3, and the SQS consumer, the outbox relay and
housekeeping run beside the HTTP server. Unit tests pass ``ports=given(fakes.ports())``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import FastAPI

from artifacts.api import router
from artifacts.handlers import event_dispatcher
from artifacts.ports import Ports
from artifacts.repository import PostgresArtifacts
from artifacts.service import ArtifactDownloads, ArtifactPublishing, ArtifactService
from artifacts.settings import ArtifactsSettings
from artifacts.storage import S3DownloadLinks, S3ObjectStore
from relay_shared.composition import OpenPorts, compose
from relay_shared.http import create_service_app
from relay_shared.internal_auth import token_verifier
from relay_shared.loops import Loop
from relay_shared.migrations import KIT_INBOX, KIT_OUTBOX
from relay_shared.runtime import ServiceRuntime

MIGRATIONS = Path(__file__).parent / "migrations"


async def open_ports(settings: ArtifactsSettings, runtime: ServiceRuntime) -> Ports:
    """PostgreSQL (migrated; waited for), S3, SQS and EventBridge, closed when the service
    stops."""
    database = await runtime.database(KIT_OUTBOX, KIT_INBOX, MIGRATIONS)
    s3 = await runtime.aws_client("s3")
    sqs = await runtime.aws_client("sqs")
    events = await runtime.aws_client("events")
    # The client that signs download URLs: its endpoint is where clients reach S3 (the
    # signature covers the host), which may differ from the one services use.
    links_s3 = await runtime.aws_client("s3", endpoint_url=settings.s3_public_endpoint_url)

    async def loops(service: ArtifactService) -> Sequence[Loop]:
        return [
            await runtime.consumer(sqs, event_dispatcher(service)),
            runtime.outbox_relay(database, events),
            runtime.housekeeping(database, outbox=True, inbox=True),
        ]

    return Ports(
        artifacts=PostgresArtifacts(database),
        objects=S3ObjectStore(s3),
        links=S3DownloadLinks(links_s3),
        loops=loops,
    )


def build(settings: ArtifactsSettings, ports: Ports) -> ArtifactService:
    """The use cases on ``ports``; no I/O."""
    return ArtifactService(
        publishing=ArtifactPublishing(
            ports.artifacts, ports.objects, bucket=settings.artifacts_bucket
        ),
        downloads=ArtifactDownloads(
            ports.artifacts,
            ports.links,
            bucket=settings.artifacts_bucket,
            ttl_seconds=settings.download_url_ttl_seconds,
        ),
    )


def create_app(
    settings: ArtifactsSettings | None = None,
    *,
    ports: OpenPorts[ArtifactsSettings, Ports] = open_ports,
) -> FastAPI:
    settings = settings or ArtifactsSettings()
    app = create_service_app(settings, start=compose(settings, ports, build), routers=[router])
    app.state.token_verifier = token_verifier(settings)
    return app
