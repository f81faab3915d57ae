"""The asserting public-API client used by the end-to-end and fault suites."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.responses import StreamingResponse
from starlette.routing import Route

from relay_devkit.api_client import PublicApi
from relay_devkit.testing import serve_app

FRAMES = [
    b'id: 1\r\nevent: task.submitted\r\ndata: {"seq": 1}\r\n\r\n',
    b": ping - a heartbeat comment\r\n\r\n",
    b'id: 2\r\nevent: task.succeeded\r\ndata: {"seq": 2}\r\n\r\n',
    b": ping\r\n\r\n",
]


async def _events(request: object) -> StreamingResponse:
    async def frames() -> AsyncIterator[bytes]:
        for frame in FRAMES:
            yield frame

    return StreamingResponse(frames(), media_type="text/event-stream")


async def test_heartbeat_comments_between_events_are_not_events() -> None:
    app = Starlette(routes=[Route("/v1/tasks/{task_id}/events", _events)])
    async with serve_app(app) as base_url:
        api = PublicApi(base_url, "rly_key")
        try:
            events = await api.timeline("t1")
        finally:
            await api.aclose()
    assert [(e.id, e.event, e.data) for e in events] == [
        (1, "task.submitted", {"seq": 1}),
        (2, "task.succeeded", {"seq": 2}),
    ]
