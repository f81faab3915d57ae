"""A stand-in for the internal services, on a real socket: it answers the few internal routes
the gateway calls and keeps what it was sent (the tokens above all)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass
class Received:
    method: str
    path: str
    authorization: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeUpstream:
    received: list[Received] = field(default_factory=list)
    release_second_event: asyncio.Event = field(default_factory=asyncio.Event)
    stream_closed: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/internal/tasks", self.submit, methods=["POST"]),
                Route("/internal/tasks/{task_id}", self.task, methods=["GET"]),
                Route("/internal/tasks/{task_id}/cancel", self.cancel, methods=["POST"]),
                Route("/internal/tasks/{task_id}/events", self.events, methods=["GET"]),
            ]
        )

    async def _keep(self, request: Request) -> None:
        self.received.append(
            Received(
                request.method,
                request.url.path,
                request.headers.get("authorization", ""),
                dict(request.headers),
                await request.body(),
            )
        )

    async def submit(self, request: Request) -> Response:
        await self._keep(request)
        return JSONResponse({"id": "t-1", "status": "queued"}, status_code=202)

    async def task(self, request: Request) -> Response:
        await self._keep(request)
        return JSONResponse({"id": request.path_params["task_id"], "status": "queued"})

    async def cancel(self, request: Request) -> Response:
        # the first request cancels; later ones find the task finished, as a real one might be
        await self._keep(request)
        if sum(r.path.endswith("/cancel") for r in self.received) == 1:
            return JSONResponse(
                {"id": request.path_params["task_id"], "status": "cancelling"}, status_code=202
            )
        return JSONResponse(
            {"title": "Task already finished", "status": 409, "task_status": "cancelled"},
            status_code=409,
            media_type="application/problem+json",
        )

    async def events(self, request: Request) -> Response:
        await self._keep(request)
        return StreamingResponse(self._timeline(), media_type="text/event-stream")

    async def _timeline(self) -> AsyncIterator[bytes]:
        try:
            for seq in (1, 2):
                if seq == 2:
                    await self.release_second_event.wait()
                data = json.dumps({"type": "task.progressed", "seq": seq})
                yield f"id: {seq}\nevent: task.progressed\ndata: {data}\n\n".encode()
            await asyncio.Event().wait()  # quiet, as between heartbeats
        finally:
            self.stream_closed.set()
