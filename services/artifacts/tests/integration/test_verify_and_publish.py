"""Verifying and publishing uploads against real PostgreSQL and moto S3."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

from artifacts.app import MIGRATIONS, build
from artifacts.ports import Ports
from artifacts.repository import PostgresArtifacts
from artifacts.service import ArtifactPublishing, StagingObjectMissing
from artifacts.settings import ArtifactsSettings
from artifacts.storage import S3DownloadLinks, S3ObjectStore
from relay_ops.stack.topology import Topology
from relay_shared.aws import aws_client
from relay_shared.db import Database, service_database
from relay_shared.events import ArtifactUploaded
from relay_shared.migrations import KIT_INBOX, KIT_OUTBOX, migrate

pytestmark = pytest.mark.integration

BODY = b"# Report\n\n" + b"line of findings\n" * 4000
Upload = Callable[..., ArtifactUploaded]
Rerun = Callable[[ArtifactUploaded], ArtifactUploaded]


@dataclass
class Rig:
    db: Database
    s3: Any
    bucket: str
    publishing: ArtifactPublishing

    async def stage(
        self, event: ArtifactUploaded, body: bytes = BODY, *, checksummed: bool = True
    ) -> None:
        """Upload as the agent does: S3 is given the body's SHA-256 (computed by botocore) and
        keeps it with the object."""
        checksum = {"ChecksumAlgorithm": "SHA256"} if checksummed else {}
        await self.s3.put_object(Bucket=self.bucket, Key=event.data.key, Body=body, **checksum)

    async def exists(self, key: str) -> bool:
        try:
            await self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError:
            return False
        return True

    async def query(self, sql: str) -> list[dict[str, Any]]:
        async with self.db.transaction() as conn:
            cur = await conn.execute(sql)
            return await cur.fetchall()


@pytest.fixture
async def rig(
    database_url: str, db_schema: str, topology: Topology, moto_endpoint: str
) -> AsyncIterator[Rig]:
    settings = ArtifactsSettings(
        env=topology.env,
        database_url=database_url,
        db_schema=db_schema,
        aws_endpoint_url=moto_endpoint,
        artifacts_bucket=topology.bucket,
    )
    await migrate(settings, KIT_OUTBOX, KIT_INBOX, MIGRATIONS)
    db = service_database(settings)
    await db.open()
    try:
        async with aws_client(settings, "s3") as s3:
            ports = Ports(
                artifacts=PostgresArtifacts(db),
                objects=S3ObjectStore(s3),
                links=S3DownloadLinks(s3),
            )
            yield Rig(db, s3, topology.bucket, build(settings, ports).publishing)
    finally:
        await db.close()


async def test_matching_upload_is_recorded_announced_and_served_in_place(
    rig: Rig, upload_event: Upload
) -> None:
    event = upload_event(BODY, bucket=rig.bucket, name="out/report.md", attempt=2, step=3)
    await rig.stage(event)

    await rig.publishing.handle_upload(event)

    [row] = await rig.query("SELECT * FROM artifacts")
    assert row["id"] == event.data.artifact_id
    assert (row["tenant_id"], row["task_id"]) == ("acme", event.metadata.task_id)
    assert (row["name"], row["size"], row["sha256"]) == (
        "out/report.md",
        len(BODY),
        event.data.sha256,
    )
    assert row["status"] == "published"
    assert row["object_key"] == event.data.key
    assert row["created_at"] == event.metadata.occurred_at
    [outbox] = await rig.query("SELECT detail_type, source, detail FROM outbox")
    assert (outbox["detail_type"], outbox["source"]) == ("artifact.published", "relay.artifacts")
    detail = outbox["detail"]
    assert detail["data"] == {
        "artifact_id": str(event.data.artifact_id),
        "name": "out/report.md",
        "content_type": event.data.content_type,
        "size": len(BODY),
        "sha256": event.data.sha256,
        "attempt": 2,  # the upload's provenance: the step that wrote it
        "step": 3,
    }
    assert detail["metadata"]["causation_id"] == str(event.metadata.event_id)
    assert detail["metadata"]["task_id"] == str(event.metadata.task_id)
    [claimed] = await rig.query("SELECT subscriber, event_id FROM inbox")
    assert claimed == {"subscriber": "artifacts", "event_id": event.metadata.event_id}
    published = await rig.s3.get_object(Bucket=rig.bucket, Key=row["object_key"])
    async with published["Body"] as stream:
        assert hashlib.sha256(await stream.read()).hexdigest() == event.data.sha256


async def test_duplicates_and_concurrent_reruns_record_and_announce_once(
    rig: Rig, upload_event: Upload, rerun: Rerun
) -> None:
    event = upload_event(BODY, bucket=rig.bucket)
    second = rerun(event)
    await rig.stage(event)
    await rig.stage(second, b"the re-run wrote other bytes")
    # the agent's attempt and its re-run race each other to the verifier
    await asyncio.gather(rig.publishing.handle_upload(event), rig.publishing.handle_upload(second))
    await rig.publishing.handle_upload(event)  # redelivery after success
    third = rerun(second)
    await rig.stage(third)
    await rig.publishing.handle_upload(third)  # a later re-run of the task

    [row] = await rig.query("SELECT object_key, sha256 FROM artifacts")
    assert await rig.query("SELECT count(*) AS n FROM outbox") == [{"n": 1}]
    # whichever upload won, the record describes the bytes at the key it points at
    published = await rig.s3.get_object(Bucket=rig.bucket, Key=row["object_key"])
    async with published["Body"] as stream:
        assert hashlib.sha256(await stream.read()).hexdigest() == row["sha256"]


@pytest.mark.parametrize("declared", [{"size": len(BODY) - 1}, {"sha256": "ab" * 32}])
async def test_mismatched_upload_is_rejected_and_not_announced(
    rig: Rig, upload_event: Upload, declared: dict[str, Any]
) -> None:
    event = upload_event(BODY, bucket=rig.bucket, **declared)
    await rig.stage(event)

    await rig.publishing.handle_upload(event)

    [row] = await rig.query("SELECT status, rejection_reason, object_key FROM artifacts")
    assert row["status"] == "rejected"
    assert row["rejection_reason"].startswith(f"uploaded object's {next(iter(declared))} is ")
    assert row["object_key"] is None
    assert await rig.query("SELECT * FROM outbox") == []
    assert await rig.exists(event.data.key)  # kept as evidence, never served


async def test_upload_s3_holds_no_checksum_for_is_rejected(rig: Rig, upload_event: Upload) -> None:
    event = upload_event(BODY, bucket=rig.bucket)
    await rig.stage(event, checksummed=False)

    await rig.publishing.handle_upload(event)

    [row] = await rig.query("SELECT status, rejection_reason FROM artifacts")
    assert row == {
        "status": "rejected",
        "rejection_reason": "uploaded object has no SHA-256 checksum",
    }
    assert await rig.query("SELECT * FROM outbox") == []


async def test_unsafe_name_with_nul_is_recorded_as_rejected(rig: Rig, upload_event: Upload) -> None:
    event = upload_event(BODY, bucket=rig.bucket, name="evil\x00name.md")

    await rig.publishing.handle_upload(event)

    [row] = await rig.query("SELECT status, rejection_reason, name FROM artifacts")
    assert row == {
        "status": "rejected",
        "rejection_reason": "name contains control characters",
        "name": "evil\ufffdname.md",
    }
    assert await rig.query("SELECT * FROM outbox") == []


async def test_missing_object_raises_and_records_nothing(rig: Rig, upload_event: Upload) -> None:
    event = upload_event(BODY, bucket=rig.bucket)

    with pytest.raises(StagingObjectMissing):
        await rig.publishing.handle_upload(event)

    assert await rig.query("SELECT * FROM artifacts") == []
    assert await rig.query("SELECT * FROM inbox") == []
    assert await rig.query("SELECT * FROM outbox") == []
