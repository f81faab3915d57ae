"""The whole service running: real HTTP, the SQS consumer and the outbox relay, with
PostgreSQL and moto server (EventBridge, SQS, S3) from the test fixtures."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from artifacts.app import build, create_app
from artifacts.ports import Ports
from artifacts.repository import PostgresArtifacts
from artifacts.settings import ArtifactsSettings
from artifacts.storage import S3DownloadLinks, S3ObjectStore
from relay_devkit.testing import eventually, serve_app
from relay_ops.stack.topology import Topology
from relay_shared.aws import aws_client
from relay_shared.consumer import decode
from relay_shared.db import service_database
from relay_shared.events import ArtifactPublished, ArtifactUploaded, DomainEvent
from relay_shared.internal_auth import TokenIssuer
from relay_shared.outbox import to_outbound
from relay_shared.publisher import EventBridgePublisher

pytestmark = pytest.mark.integration

BODY = "# Résumé\n\nThe agent's findings.\n".encode()
Upload = Callable[..., ArtifactUploaded]


@pytest.fixture
def settings(
    database_url: str,
    db_schema: str,
    topology: Topology,
    moto_endpoint: str,
    internal_keys: tuple[str, str],
) -> ArtifactsSettings:
    return ArtifactsSettings(
        env=topology.env,
        database_url=database_url,
        db_schema=db_schema,
        aws_endpoint_url=moto_endpoint,
        internal_auth_public_key=internal_keys[1],
        consumer_wait_seconds=1,
        shutdown_grace_seconds=5,
    )


@pytest.fixture
def issuer(internal_keys: tuple[str, str]) -> TokenIssuer:
    return TokenIssuer(internal_keys[0])


@pytest.fixture
async def s3(settings: ArtifactsSettings) -> AsyncIterator[Any]:
    async with aws_client(settings, "s3") as client:
        yield client


async def publish_directly(settings: ArtifactsSettings, s3: Any, event: ArtifactUploaded) -> None:
    """Seed one published artifact through the use case (the app has migrated the schema)."""
    await s3.put_object(
        Bucket=settings.artifacts_bucket, Key=event.data.key, Body=BODY, ChecksumAlgorithm="SHA256"
    )
    db = service_database(settings)
    await db.open()
    try:
        ports = Ports(
            artifacts=PostgresArtifacts(db), objects=S3ObjectStore(s3), links=S3DownloadLinks(s3)
        )
        await build(settings, ports).publishing.handle_upload(event)
    finally:
        await db.close()


async def test_upload_on_the_bus_is_published_to_subscribers(
    settings: ArtifactsSettings,
    topology: Topology,
    s3: Any,
    issuer: TokenIssuer,
    upload_event: Upload,
) -> None:
    event = upload_event(BODY, bucket=topology.bucket, name="résumé.md")
    await s3.put_object(
        Bucket=topology.bucket, Key=event.data.key, Body=BODY, ChecksumAlgorithm="SHA256"
    )
    received: list[DomainEvent] = []

    async with (
        serve_app(create_app(settings)) as base_url,
        aws_client(settings, "events") as events,
        aws_client(settings, "sqs") as sqs,
    ):
        outcome = await EventBridgePublisher(events, settings.event_bus_name).publish(
            [to_outbound(event)]
        )
        assert outcome.failed == {}

        async def notifier_inbox() -> list[DomainEvent]:
            response = await sqs.receive_message(
                QueueUrl=topology.queue_urls["notifier"], WaitTimeSeconds=1
            )
            received.extend(decode(m["Body"]) for m in response.get("Messages", []))
            return received

        await eventually(notifier_inbox, within=20)

        async with httpx.AsyncClient(base_url=base_url) as client:
            listed = await client.get(
                f"/internal/tasks/{event.metadata.task_id}/artifacts",
                headers=issuer.headers(audience="artifacts", tenant_id="acme"),
            )

    [published] = received
    assert isinstance(published, ArtifactPublished)
    assert published.data.artifact_id == event.data.artifact_id
    assert published.data.sha256 == hashlib.sha256(BODY).hexdigest()
    assert published.metadata.causation_id == str(event.metadata.event_id)
    assert [item["id"] for item in listed.json()["items"]] == [str(event.data.artifact_id)]


async def test_owner_downloads_through_the_presigned_url(
    settings: ArtifactsSettings, s3: Any, issuer: TokenIssuer, upload_event: Upload
) -> None:
    event = upload_event(BODY, bucket=settings.artifacts_bucket, name="out/résumé.md")
    path = f"/internal/tasks/{event.metadata.task_id}/artifacts"
    owner = issuer.headers(audience="artifacts", tenant_id="acme")

    async with serve_app(create_app(settings)) as base_url:
        await publish_directly(settings, s3, event)
        async with httpx.AsyncClient(base_url=base_url) as client:
            listed = await client.get(path, headers=owner)
            single = await client.get(f"{path}/{event.data.artifact_id}", headers=owner)
            download = await client.get(single.json()["download_url"])

    assert listed.status_code == 200
    [item] = listed.json()["items"]
    assert item["name"] == "out/résumé.md"
    assert single.status_code == 200
    assert {k: v for k, v in single.json().items() if not k.startswith("download_url")} == item
    assert download.status_code == 200
    assert hashlib.sha256(download.content).hexdigest() == event.data.sha256
    assert download.headers["content-type"] == event.data.content_type
    assert download.headers["content-disposition"] == (
        "attachment; filename=\"r_sum_.md\"; filename*=UTF-8''r%C3%A9sum%C3%A9.md"
    )


async def test_other_tenants_and_anonymous_callers_see_nothing(
    settings: ArtifactsSettings, s3: Any, issuer: TokenIssuer, upload_event: Upload
) -> None:
    event = upload_event(BODY, bucket=settings.artifacts_bucket, tenant_id="acme")
    path = f"/internal/tasks/{event.metadata.task_id}/artifacts"
    intruder = issuer.headers(audience="artifacts", tenant_id="globex")

    async with serve_app(create_app(settings)) as base_url:
        await publish_directly(settings, s3, event)
        async with httpx.AsyncClient(base_url=base_url) as client:
            listed = await client.get(path, headers=intruder)
            single = await client.get(f"{path}/{event.data.artifact_id}", headers=intruder)
            anonymous = await client.get(path)
            owner = await client.get(
                path, headers=issuer.headers(audience="artifacts", tenant_id="acme")
            )

    assert owner.json()["items"] != []  # the artifact is there, for its owner only
    assert (listed.status_code, listed.json()) == (200, {"items": []})
    assert single.status_code == 404
    assert anonymous.status_code == 401


async def test_download_url_uses_the_public_s3_endpoint(
    settings: ArtifactsSettings,
    moto_endpoint: str,
    s3: Any,
    issuer: TokenIssuer,
    upload_event: Upload,
) -> None:
    # services reach moto at 127.0.0.1; a browser on the host would use "localhost"
    public = moto_endpoint.replace("127.0.0.1", "localhost")
    app = create_app(settings.model_copy(update={"s3_public_endpoint_url": public}))
    event = upload_event(BODY, bucket=settings.artifacts_bucket)

    async with serve_app(app) as base_url:
        await publish_directly(settings, s3, event)
        async with httpx.AsyncClient(base_url=base_url) as client:
            single = await client.get(
                f"/internal/tasks/{event.metadata.task_id}/artifacts/{event.data.artifact_id}",
                headers=issuer.headers(audience="artifacts", tenant_id="acme"),
            )
            url = single.json()["download_url"]
            download = await client.get(url)

    assert url.startswith(f"{public}/{settings.artifacts_bucket}/artifacts/acme/")
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url  # SigV4: S3 refuses SigV2 on new buckets
    assert "X-Amz-Expires=300" in url
    assert download.content == BODY
