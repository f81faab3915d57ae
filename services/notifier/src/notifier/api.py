"""Internal routes: the SSE stream of a task's timeline, and live connections (WebSocket) that
follow many timelines at once (session.py); the gateway relays both to clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request, Response, WebSocket
from sse_starlette import EventSourceResponse, ServerSentEvent

from notifier.service import Notifier
from notifier.stream import Access
from relay_shared.internal_auth import InternalCaller, InvalidToken, verified_caller
from relay_shared.problems import Problem
from relay_shared.sockets import UNAUTHENTICATED, close, serve_socket

router = APIRouter()


def _notifier(request: Request) -> Notifier:
    notifier: Notifier = request.app.state.service
    return notifier


Service = Annotated[Notifier, Depends(_notifier)]


def _resume_after(header: str | None, query: str | None) -> int:
    """The seq to resume after. The header wins: a reconnecting EventSource sends it, and it is
    newer than the query parameter the client started with."""
    raw = header if header is not None else query
    if raw is None or raw.strip() == "":
        return 0
    text = raw.strip()
    if not (text.isascii() and text.isdigit()):  # refuses signs, spaces, other scripts' digits
        raise Problem(
            400,
            "Invalid Last-Event-ID",
            f"Last-Event-ID must be a timeline seq (a non-negative integer), not {raw!r}.",
        )
    return int(text)


@router.get("/internal/tasks/{task_id}/events")
async def task_events(
    task_id: UUID,
    caller: InternalCaller,
    notifier: Service,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    last_event_id: Annotated[str | None, Query()] = None,
) -> Response:
    """SSE: ``id:`` = seq, ``event:`` = event name, ``data:`` = timeline event JSON; ends after
    the terminal event."""
    after_seq = _resume_after(last_event_id_header, last_event_id)
    stream = notifier.stream
    access = await stream.access(task_id, caller.tenant_id, after_seq=after_seq)
    if access is Access.HIDDEN:
        raise Problem(404, "Not Found", f"No task {task_id}.")
    if access is Access.FINISHED:
        # An EventSource reconnects whenever a stream ends; 204 is the SSE way to say "stop".
        return Response(status_code=204)

    async def frames() -> AsyncIterator[ServerSentEvent]:
        async for event in stream.follow(task_id, caller.tenant_id, after_seq=after_seq):
            yield ServerSentEvent(id=str(event.seq), event=event.type, data=event.client_json())

    return EventSourceResponse(frames(), ping=notifier.heartbeat_seconds)


@router.websocket("/internal/ws")
async def live(websocket: WebSocket) -> None:
    """Many tasks' timelines on one connection for the caller's tenant (session.py)."""
    await websocket.accept()
    try:
        caller = verified_caller(websocket)
    except InvalidToken:
        await close(websocket, UNAUTHENTICATED, "An internal token is required.")
        return
    notifier: Notifier = websocket.app.state.service
    session = notifier.session(caller.tenant_id)
    try:
        await serve_socket(websocket, on_text=session.receive, outbox=session.outbox)
    finally:
        await session.close()
