"""The web console's built files at ``/console/`` (``RELAY_CONSOLE_DIR``, the output of
``npm run build`` in console/): a single-page app, so every route under it that names no file
answers ``index.html``. Hashed assets (``assets/``) are cached for a year, everything else is
revalidated on each load, and every answer carries the console's security headers (a strict
Content-Security-Policy among them). No authentication: the files are public, and the app signs
in with an API key against ``/v1`` like any client.

CloudFront serves the same files the same way on AWS (terraform/modules/frontend, ADR 0014).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles

from relay_shared.problems import Problem

log = logging.getLogger(__name__)

PREFIX = "/console"
ASSETS = "assets/"
INDEX = "index.html"
# Vite names every file under assets/ by its content hash: a changed file is a new URL.
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


def content_security_policy(storage_origins: Sequence[str] = ()) -> str:
    """The console's CSP: its own files only, no inline script or style, and artifact downloads
    (presigned S3 URLs, moto locally) readable for previews from ``storage_origins``."""
    storage = "".join(f" {origin}" for origin in storage_origins)
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src 'self' data: blob:{storage}; connect-src 'self'{storage}; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    )


def security_headers(storage_origins: Sequence[str] = ()) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(storage_origins),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }


def is_file_path(path: str) -> bool:
    """A path that names a file (``assets/...``, or a last segment with an extension) is served
    as that file or 404; any other path is a route of the app and gets index.html. CloudFront's
    viewer-request function draws the same line (terraform/modules/frontend)."""
    return path.startswith(ASSETS) or "." in path.rsplit("/", 1)[-1]


class ConsoleFiles:
    """The built console in ``directory`` (None: not served here)."""

    def __init__(self, directory: Path | None, storage_origins: Sequence[str] = ()) -> None:
        self.directory = directory
        self.headers = security_headers(storage_origins)
        # Starlette's StaticFiles: ETag/Last-Modified, 304s, HEAD, and no way out of directory
        self._files = (
            StaticFiles(directory=directory, check_dir=False) if directory is not None else None
        )

    def not_found(self, detail: str) -> Problem:
        return Problem(404, "Not Found", detail, headers=self.headers)

    def redirect(self, request: Request) -> Response:
        """``/console`` -> ``/console/`` (relative URLs in index.html resolve under it)."""
        self._served()
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"{PREFIX}/{query}", status_code=301, headers=self.headers)

    async def response(self, path: str, request: Request) -> Response:
        files = self._served()
        segments = path.split("/")
        if any(s.startswith(".") or "\\" in s or "\x00" in s for s in segments):
            # '..' (a way out), '.' and dot-files: never part of a build
            raise self.not_found("No such file in the console.")
        if not is_file_path(path):
            path = INDEX
        try:
            response = await files.get_response(path, request.scope)
        except HTTPException as exc:
            if path == INDEX:
                log.warning(
                    "RELAY_CONSOLE_DIR=%s has no %s: build the console", self.directory, INDEX
                )
                raise self.not_found(
                    "The console is not built here (`make install` builds it)."
                ) from exc
            raise self.not_found("No such file in the console.") from exc
        response.headers.update(self.headers)
        response.headers["Cache-Control"] = IMMUTABLE if path.startswith(ASSETS) else REVALIDATE
        return response

    def _served(self) -> StaticFiles:
        if self._files is None:
            raise self.not_found(
                "The console is not served here (the gateway's RELAY_CONSOLE_DIR is not set)."
            )
        return self._files


def console_router(files: ConsoleFiles) -> APIRouter:
    """``GET /console`` and ``GET /console/{path}``: out of the OpenAPI document (not /v1)."""
    router = APIRouter(include_in_schema=False)

    @router.api_route(PREFIX, methods=["GET", "HEAD"])
    async def console_root(request: Request) -> Response:
        return files.redirect(request)

    @router.api_route(PREFIX + "/{path:path}", methods=["GET", "HEAD"])
    async def console_file(request: Request, path: str) -> Response:
        return await files.response(path, request)

    return router
