"""S3 (aiobotocore) for the object store and download links ports: what an upload holds, as S3
vouches for it, and presigned download links."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import quote

from botocore.exceptions import ClientError

from artifacts.models import ObjectDigest

# HEAD answers carry only the bare status
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


class S3ObjectStore:
    def __init__(self, s3: Any) -> None:
        self._s3 = s3

    async def describe(self, bucket: str, key: str) -> ObjectDigest | None:
        try:
            head = await self._s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                return None
            raise
        return ObjectDigest(size=head["ContentLength"], sha256=_hex(head.get("ChecksumSHA256")))


def _hex(checksum: str | None) -> str | None:
    """S3's base64 full-object SHA-256 as hex; None for none, or for a multipart upload's
    checksum of part checksums (``...-N``), which does not name the bytes' own digest."""
    if not checksum or "-" in checksum:
        return None
    try:
        return base64.b64decode(checksum, validate=True).hex()
    except (binascii.Error, ValueError):
        return None


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
