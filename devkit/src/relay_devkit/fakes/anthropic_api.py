"""A fake of the Anthropic Messages API (``POST /v1/messages``), streaming included.

Point the official SDK at it with ``AsyncAnthropic(base_url=url, api_key=...)`` (or
``ANTHROPIC_BASE_URL``). Streams are server-sent events exactly as the API sends them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay_devkit.fakes.endpoint import FakeModelApi
from relay_devkit.fakes.turns import ApiError


def sse(event: dict[str, Any]) -> bytes:
    """One server-sent event named by its ``type``, as the Messages API frames them."""
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


class FakeAnthropicApi(FakeModelApi):
    def routes(self) -> Sequence[Route]:
        return [Route("/v1/messages", self._messages, methods=["POST"])]

    async def _messages(self, request: Request) -> Response:
        body: dict[str, Any] = await request.json()
        model = str(body.get("model", ""))
        return await self.answer(request, model=model, body=body, streamed=bool(body.get("stream")))

    def error_response(self, error: ApiError) -> Response:
        return JSONResponse(error.body(), status_code=error.status, headers=error.headers())

    def encode_event(self, event: dict[str, Any]) -> bytes:
        return sse(event)

    def encode_stream_error(self, error: ApiError) -> bytes:
        return sse(error.body())
