"""Publish a web console build to the frontend bucket behind CloudFront (`relay console-deploy`,
`make console-deploy`). boto3 only: no AWS CLI needed.

The build (console/dist, Vite's base /console/) goes under the key prefix ``console/``, so the
URLs are the same as on the local gateway (ADR 0014). Hashed assets go first, with a year's
immutable cache, and an asset already in the bucket is not sent again (its name is its content);
then the other files, ``index.html`` last, with ``no-cache``, so a page never names an asset that
is not there yet. Old assets stay: a browser holding the previous index.html can still load
them. Last, a CloudFront invalidation of the non-asset files.
"""

from __future__ import annotations

import mimetypes
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PREFIX = "console/"
ASSETS = "assets/"
INDEX = "index.html"
ASSET_CACHE = "public, max-age=31536000, immutable"
PAGE_CACHE = "no-cache"
# What browsers must get whatever the machine's mime.types says (a module script needs a
# JavaScript type under X-Content-Type-Options: nosniff).
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".txt": "text/plain; charset=utf-8",
}


class ConsoleBuildError(RuntimeError):
    """The directory is not a console build fit to publish."""


@dataclass(frozen=True)
class Upload:
    path: Path
    key: str
    content_type: str
    cache_control: str

    @property
    def is_asset(self) -> bool:
        return self.cache_control == ASSET_CACHE


@dataclass(frozen=True)
class Published:
    uploaded: tuple[str, ...]
    unchanged: tuple[str, ...]
    invalidation_id: str | None
    invalidated: tuple[str, ...]


def content_type(path: Path) -> str:
    guessed = CONTENT_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0]
    return guessed or "application/octet-stream"


def plan(dist: Path, prefix: str = PREFIX) -> list[Upload]:
    """Every file of the build, in upload order: assets, other files, index.html last."""
    index = dist / INDEX
    if not index.is_file():
        raise ConsoleBuildError(
            f"{dist} has no {INDEX}: build the console first (`make console-build`, or "
            "`npm ci && npm run build` in console/)"
        )
    page = index.read_text(encoding="utf-8")
    if '"/assets/' in page or "'/assets/" in page:
        raise ConsoleBuildError(
            f"{index} loads /assets/...: it was built without Vite's base /console/, and would "
            "not load under /console/ (set base: '/console/' in console/vite.config.ts)"
        )
    files = sorted(p for p in dist.rglob("*") if p.is_file() and not p.name.startswith("."))
    uploads = []
    for path in files:
        relative = path.relative_to(dist).as_posix()
        cache = ASSET_CACHE if relative.startswith(ASSETS) else PAGE_CACHE
        uploads.append(Upload(path, prefix + relative, content_type(path), cache))
    return sorted(uploads, key=lambda u: (not u.is_asset, u.key == prefix + INDEX, u.key))


def publish(
    dist: Path,
    *,
    bucket: str,
    distribution_id: str | None,
    s3: Any,
    cloudfront: Any | None,
    prefix: str = PREFIX,
    say: Callable[[str], None] = lambda _line: None,
) -> Published:
    """Upload ``dist`` to ``s3://bucket/prefix`` and invalidate its non-asset paths."""
    uploads = plan(dist, prefix)
    present = _sizes(s3, bucket, prefix + ASSETS)
    uploaded: list[str] = []
    unchanged: list[str] = []
    for upload in uploads:
        if upload.is_asset and present.get(upload.key) == upload.path.stat().st_size:
            unchanged.append(upload.key)
            continue
        with upload.path.open("rb") as body:
            s3.put_object(
                Bucket=bucket,
                Key=upload.key,
                Body=body,
                ContentType=upload.content_type,
                CacheControl=upload.cache_control,
            )
        uploaded.append(upload.key)
        say(f"  uploaded s3://{bucket}/{upload.key} ({upload.cache_control})")
    # index.html is reached as /console/ and every app route; CloudFront's function turns them
    # all into /console/index.html before the cache, so that one path covers them.
    paths = tuple(f"/{u.key}" for u in uploads if not u.is_asset)
    invalidation_id = None
    if distribution_id and cloudfront is not None:
        answer = cloudfront.create_invalidation(
            DistributionId=distribution_id,
            InvalidationBatch={
                "Paths": {"Quantity": len(paths), "Items": list(paths)},
                "CallerReference": f"relay-console-{time.time_ns()}",
            },
        )
        invalidation_id = str(answer["Invalidation"]["Id"])
    return Published(tuple(uploaded), tuple(unchanged), invalidation_id, paths)


def _sizes(s3: Any, bucket: str, prefix: str) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            sizes[str(item["Key"])] = int(item["Size"])
    return sizes
