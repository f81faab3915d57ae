"""Relaying an internal event stream (SSE) to the client as the bytes arrive."""

from __future__ import annotations

import contextlib

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from gateway.ports import ReplyStream

SSE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # tell proxies in front (nginx, ALB setups) not to buffer
}


class RelayedEventStream(StreamingResponse):
    """Streams ``upstream`` chunk by chunk and closes it as soon as either side ends: the
    upstream finishing, or the client going away (noticed at once, not at the next write)."""

    media_type = "text/event-stream"

    def __init__(self, upstream: ReplyStream) -> None:
        super().__init__(upstream.chunks(), headers=SSE_HEADERS)
        self._upstream = upstream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:

                async def relay() -> None:
                    with contextlib.suppress(OSError):  # the client went away mid-write
                        await self.stream_response(send)
                    group.cancel_scope.cancel()

                async def watch_client() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    group.cancel_scope.cancel()

                group.start_soon(relay)
                group.start_soon(watch_client)
        finally:
            with anyio.CancelScope(shield=True):
                await self._upstream.aclose()
