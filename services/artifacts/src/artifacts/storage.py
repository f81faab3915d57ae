"""S3 (aiobotocore) for the object store and download links ports: reading staged uploads,
publishing them, and presigned download links."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote

from botocore.exceptions import ClientError

from artifacts.models import ObjectDigest

_CHUNK_BYTES = 1024 * 1024
# GetObject answers NoSuchKey; HEAD-style errors carry the bare status
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


class S3ObjectStore:
    def __init__(self, s3: Any) -> None:
        self._s3 = s3

    async def digest(self, bucket: str, key: str) -> ObjectDigest | None:
        try:
            response = await self._s3.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                return None
            raise
        hasher = hashlib.sha256()
        size = 0
        # streamed: an artifact never has to fit in memory
        async with response["Body"] as body:
            async for chunk in body.iter_chunks(_CHUNK_BYTES):
                hasher.update(chunk)
                size += len(chunk)
        return ObjectDigest(size=size, sha256=hasher.hexdigest(), etag=response["ETag"])

    async def copy(
        self,
        bucket: str,
        source_key: str,
        target_key: str,
        *,
        if_match: str,
        content_type: str,
        sha256: str,
    ) -> None:
        await self._s3.copy_object(
            Bucket=bucket,
            Key=target_key,
            CopySource={"Bucket": bucket, "Key": source_key},
            CopySourceIfMatch=if_match,
            MetadataDirective="REPLACE",
            ContentType=content_type,
            Metadata={"sha256": sha256},
        )

    async def delete(self, bucket: str, key: str) -> None:
        await self._s3.delete_object(Bucket=bucket, Key=key)


class S3DownloadLinks:
    """Presigns with its own client, whose endpoint may be the one clients reach S3 at."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3

    async def presign(
        self, bucket: str, key: str, *, filename: str, content_type: str, expires_in: int
    ) -> str:
        url: str = await self._s3.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": bucket,
                "Key": key,
                "ResponseContentDisposition": attachment(filename),
                "ResponseContentType": content_type,
            },
            ExpiresIn=expires_in,
        )
        return url


def attachment(filename: str) -> str:
    """Content-Disposition for a download (RFC 6266): an ASCII fallback plus the UTF-8 name."""
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
