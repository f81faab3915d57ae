"""Staging files the model wrote: upload to S3, then describe them in ``artifact.uploaded``.

The artifacts service verifies each staged object against the event (size, sha256) and
publishes it; it dedupes by artifact id, which is why the id is derived, not random.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
from typing import Any
from uuid import UUID, uuid5

from agent.ports import StagingArea
from relay_shared.events import ArtifactUploadedData

DEFAULT_CONTENT_TYPE = "application/octet-stream"


def artifact_id(task_id: UUID, name: str, write_number: int) -> UUID:
    """The same for the same task, path and n-th write of that path: a re-run reuses ids."""
    return uuid5(task_id, f"{name}#{write_number}")


def content_type(name: str) -> str:
    guessed, _encoding = mimetypes.guess_type(name, strict=False)
    return guessed or DEFAULT_CONTENT_TYPE


def staging_key(tenant_id: str, task_id: UUID, artifact: UUID, name: str) -> str:
    return f"staging/{tenant_id}/{task_id}/{artifact}/{name}"


class S3StagingArea:
    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self.bucket = bucket

    async def put(self, key: str, data: bytes, *, content_type: str, sha256: bytes) -> None:
        # S3 checks the body against the checksum, so a corrupted upload fails here.
        await self._s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
            ChecksumSHA256=base64.b64encode(sha256).decode(),
        )


async def stage(
    area: StagingArea,
    *,
    tenant_id: str,
    task_id: UUID,
    name: str,
    data: bytes,
    write_number: int,
    attempt: int,
    step: int,
) -> ArtifactUploadedData:
    """Upload one written file to the staging area; returns what artifact.uploaded says."""
    digest = hashlib.sha256(data)
    artifact = artifact_id(task_id, name, write_number)
    key = staging_key(tenant_id, task_id, artifact, name)
    kind = content_type(name)
    await area.put(key, data, content_type=kind, sha256=digest.digest())
    return ArtifactUploadedData(
        artifact_id=artifact,
        name=name,
        content_type=kind,
        size=len(data),
        sha256=digest.hexdigest(),
        bucket=area.bucket,
        key=key,
        attempt=attempt,
        step=step,
    )
