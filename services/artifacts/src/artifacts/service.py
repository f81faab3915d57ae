"""Use cases: verify and publish uploads; list artifacts and hand out download links.
``ArtifactService`` holds both: what routes and handlers use."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import NAMESPACE_URL, UUID, uuid5

from artifacts.models import Artifact, ArtifactStatus
from artifacts.ports import Artifacts, DownloadLinks, ObjectStore
from artifacts.verification import content_problem, declaration_problem, printable
from relay_shared.events import ArtifactPublished, ArtifactPublishedData, ArtifactUploaded

log = logging.getLogger(__name__)

# artifact.published gets an event id derived from the artifact id: one artifact, one event,
# whatever path (duplicate, re-run, race) led to publishing it.
_PUBLISHED_EVENTS = uuid5(NAMESPACE_URL, "urn:relay:event:artifact.published")


class StagingObjectMissing(RuntimeError):
    """The uploaded object is not there: the message is retried, then dead-lettered."""


class ArtifactPublishing:
    """artifact.uploaded -> a verified, published artifact and artifact.published, or a
    rejected record when the uploaded bytes are not what the agent declared.

    The object is published where the agent uploaded it (its attempt's own key, written once):
    verifying is a HEAD for the size and the SHA-256 S3 checked on upload, publishing is the
    record and the event in one transaction (ADR 0023)."""

    def __init__(self, artifacts: Artifacts, objects: ObjectStore, *, bucket: str) -> None:
        self._artifacts = artifacts
        self._objects = objects
        self._bucket = bucket

    async def handle_upload(self, event: ArtifactUploaded) -> None:
        upload = event.data
        problem = declaration_problem(event, bucket=self._bucket)
        if problem:
            await self._reject(event, problem)
            return
        if await self._already_published(upload.artifact_id):
            return  # a duplicate event, or the agent re-running the task: nothing new
        stored = await self._objects.describe(upload.bucket, upload.key)
        if stored is None:
            raise StagingObjectMissing(f"no uploaded object s3://{upload.bucket}/{upload.key}")
        problem = content_problem(upload, stored)
        if problem:
            await self._reject(event, problem)
            return
        await self._publish(event)

    async def _already_published(self, artifact_id: UUID) -> bool:
        current = await self._artifacts.find(artifact_id)
        published = current is not None and current.status is ArtifactStatus.PUBLISHED
        if published:
            log.info("artifact %s already published; upload event ignored", artifact_id)
        return published

    async def _publish(self, event: ArtifactUploaded) -> None:
        artifact = _record(event, ArtifactStatus.PUBLISHED, object_key=event.data.key)
        async with self._artifacts.transaction() as tx:
            if not await tx.claim(event):
                return
            # under the per-artifact lock: of two attempts' uploads of one id, one is published
            current = await tx.lock_artifact(artifact.id)
            if not _may_replace(current, artifact):
                log.info("artifact %s already recorded; upload event ignored", artifact.id)
                return
            if not await tx.record(artifact):
                return
            await tx.announce(_announcement(event))
        log.info(
            "published artifact %s (%s, %d bytes) of task %s",
            artifact.id,
            artifact.name,
            artifact.size,
            artifact.task_id,
        )

    async def _reject(self, event: ArtifactUploaded, reason: str) -> None:
        artifact = _record(event, ArtifactStatus.REJECTED, rejection_reason=reason)
        async with self._artifacts.transaction() as tx:
            if not await tx.claim(event):
                return
            await tx.record(artifact)  # never overwrites an existing record
        # the object stays as evidence; nothing hands out a link to it
        log.warning(
            "rejected artifact %s (%r) of task %s: %s",
            artifact.id,
            artifact.name,
            artifact.task_id,
            reason,
        )


def _may_replace(current: Artifact | None, candidate: Artifact) -> bool:
    """A good upload may supersede a rejected one of the same task; a published record stays."""
    return current is None or (
        current.status is ArtifactStatus.REJECTED
        and (current.tenant_id, current.task_id) == (candidate.tenant_id, candidate.task_id)
    )


def _record(
    event: ArtifactUploaded,
    status: ArtifactStatus,
    *,
    object_key: str | None = None,
    rejection_reason: str | None = None,
) -> Artifact:
    meta, upload = event.metadata, event.data
    return Artifact(
        id=upload.artifact_id,
        tenant_id=meta.tenant_id,
        task_id=meta.task_id,
        # a rejected upload may carry any text; store it printable
        name=printable(upload.name),
        content_type=printable(upload.content_type),
        size=upload.size,
        sha256=upload.sha256,
        status=status,
        staging_key=printable(upload.key),
        object_key=object_key,
        rejection_reason=rejection_reason and printable(rejection_reason),
        created_at=meta.occurred_at,
    )


def _announcement(event: ArtifactUploaded) -> ArtifactPublished:
    upload = event.data
    return ArtifactPublished.create(
        ArtifactPublishedData(
            artifact_id=upload.artifact_id,
            name=upload.name,
            content_type=upload.content_type,
            size=upload.size,
            sha256=upload.sha256,
            attempt=upload.attempt,
            step=upload.step,
        ),
        tenant_id=event.metadata.tenant_id,
        task_id=event.metadata.task_id,
        caused_by=event.metadata,
        event_id=uuid5(_PUBLISHED_EVENTS, str(upload.artifact_id)),
    )


@dataclass(frozen=True)
class Download:
    artifact: Artifact
    url: str
    expires_at: datetime


def _now() -> datetime:
    return datetime.now(UTC)


class ArtifactDownloads:
    """A tenant's view of its published artifacts; other tenants' do not exist here."""

    def __init__(
        self,
        artifacts: Artifacts,
        links: DownloadLinks,
        *,
        bucket: str,
        ttl_seconds: int,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._artifacts = artifacts
        self._links = links
        self._bucket = bucket
        self._ttl = ttl_seconds
        self._clock = clock

    async def list_published(self, tenant_id: str, task_id: UUID) -> list[Artifact]:
        return await self._artifacts.published_for_task(tenant_id, task_id)

    async def download(self, tenant_id: str, task_id: UUID, artifact_id: UUID) -> Download | None:
        artifact = await self._artifacts.published(tenant_id, task_id, artifact_id)
        if artifact is None or artifact.object_key is None:
            return None
        # taken before signing, so the URL is valid at least until the time stated
        expires_at = self._clock().replace(microsecond=0) + timedelta(seconds=self._ttl)
        url = await self._links.presign(
            self._bucket,
            artifact.object_key,
            filename=artifact.filename,
            content_type=artifact.content_type,
            expires_in=self._ttl,
        )
        return Download(artifact=artifact, url=url, expires_at=expires_at)


@dataclass(frozen=True)
class ArtifactService:
    """The artifacts service's use cases, as routes and handlers use them."""

    publishing: ArtifactPublishing
    downloads: ArtifactDownloads
