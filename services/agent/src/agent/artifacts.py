"""Staging files the model wrote: upload each once to S3, then describe it in
``artifact.uploaded``.

An upload is written where it will be served from, under a key of its own attempt, and never
overwritten (If-None-Match). Until the artifacts service has checked it against the event
(size and the SHA-256 S3 verified on upload) and recorded it published, nothing hands out a
link to it: it is staged. The artifacts service dedupes by artifact id, which is why the id is
derived, not random (ADR 0023).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import mimetypes
from typing import Any
from uuid import UUID, uuid5

from botocore.exceptions import ClientError

from agent.ports import StagingArea
from relay_shared.events import ArtifactUploadedData

log = logging.getLogger(__name__)

DEFAULT_CONTENT_TYPE = "application/octet-stream"


def artifact_id(task_id: UUID, name: str, write_number: int) -> UUID:
    """The same for the same task, path and n-th write of that path: a re-run reuses ids."""
    return uuid5(task_id, f"{name}#{write_number}")


def content_type(name: str) -> str:
    guessed, _encoding = mimetypes.guess_type(name, strict=False)
    return guessed or DEFAULT_CONTENT_TYPE


def upload_key(tenant_id: str, task_id: UUID, artifact: UUID, attempt: int, name: str) -> str:
    """Where an attempt uploads one artifact: a re-run of the task writes beside, never over,
    what an earlier attempt wrote (the artifacts service publishes the first it verifies)."""
    return f"artifacts/{tenant_id}/{task_id}/{artifact}/{attempt}/{name}"


class S3StagingArea:
    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self.bucket = bucket

    async def put(self, key: str, data: bytes, *, content_type: str, sha256: bytes) -> None:
        # S3 checks the body against the checksum (a corrupted upload fails here) and keeps it
        # with the object: the artifacts service verifies with a HEAD, never reading the bytes.
        try:
            await self._s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=base64.b64encode(sha256).decode(),
                IfNoneMatch="*",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "PreconditionFailed":
                raise
            # The key is this attempt's own: a retried PUT whose first try landed. Whatever is
            # there, the artifacts service checks it against the declaration.
            log.info("s3://%s/%s was already uploaded by this attempt", self.bucket, key)


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
    key = upload_key(tenant_id, task_id, artifact, attempt, name)
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
