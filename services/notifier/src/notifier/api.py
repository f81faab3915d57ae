"""Internal routes: the SSE stream of a task's timeline, live connections (WebSocket) that
follow many timelines at once (session.py), the webhook API (webhooks.py), and the WebSocket
API's connections on the API Gateway edge (edge.py); the gateway relays them all to clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, WebSocket
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse

from notifier.edge import EdgeDelivery, UnknownConnection
from notifier.models import (
    DeliveryStatus,
    NewWebhookEndpointView,
    ReplayQueued,
    ReplayRequest,
    TestQueued,
    WebhookDeliveryPage,
    WebhookEndpointList,
    WebhookEndpointRequest,
    WebhookEndpointUpdate,
    WebhookEndpointView,
    WebhookSecretView,
)
from notifier.service import Notifier
from notifier.stream import Access
from relay_shared.internal_auth import InternalCaller, InvalidToken, verified_caller
from relay_shared.problems import Problem
from relay_shared.sockets import UNAUTHENTICATED, close, serve_socket

router = APIRouter()


async def _notifier(request: Request) -> Notifier:  # async: no worker thread
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

    async def frames() -> AsyncIterator[bytes]:
        async for event in stream.follow(task_id, caller.tenant_id, after_seq=after_seq):
            yield event.sse_frame

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


# --- Webhooks (webhooks.py); the gateway relays /v1/webhooks here ---

WebhookId = Annotated[UUID, Path(description="The webhook endpoint's id.")]


@router.post("/internal/webhooks", status_code=201)
async def create_webhook(
    body: WebhookEndpointRequest, caller: InternalCaller, notifier: Service
) -> NewWebhookEndpointView:
    return await notifier.webhooks.create(caller.tenant_id, body)


@router.get("/internal/webhooks")
async def list_webhooks(caller: InternalCaller, notifier: Service) -> WebhookEndpointList:
    return await notifier.webhooks.list(caller.tenant_id)


@router.get("/internal/webhooks/{webhook_id}")
async def get_webhook(
    webhook_id: WebhookId, caller: InternalCaller, notifier: Service
) -> WebhookEndpointView:
    return await notifier.webhooks.get(caller.tenant_id, webhook_id)


@router.patch("/internal/webhooks/{webhook_id}")
async def update_webhook(
    webhook_id: WebhookId, body: WebhookEndpointUpdate, caller: InternalCaller, notifier: Service
) -> WebhookEndpointView:
    return await notifier.webhooks.update(caller.tenant_id, webhook_id, body)


@router.delete("/internal/webhooks/{webhook_id}", status_code=204)
async def delete_webhook(webhook_id: WebhookId, caller: InternalCaller, notifier: Service) -> None:
    await notifier.webhooks.delete(caller.tenant_id, webhook_id)


@router.post("/internal/webhooks/{webhook_id}/rotate-secret")
async def rotate_webhook_secret(
    webhook_id: WebhookId, caller: InternalCaller, notifier: Service
) -> WebhookSecretView:
    return await notifier.webhooks.rotate_secret(caller.tenant_id, webhook_id)


@router.get("/internal/webhooks/{webhook_id}/deliveries")
async def webhook_deliveries(
    *,
    webhook_id: WebhookId,
    caller: InternalCaller,
    notifier: Service,
    status: DeliveryStatus | None = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> WebhookDeliveryPage:
    return await notifier.webhooks.deliveries(
        caller.tenant_id, webhook_id, status=status, cursor=cursor, limit=limit
    )


@router.post("/internal/webhooks/{webhook_id}/replay", status_code=202)
async def replay_webhook(
    webhook_id: WebhookId, body: ReplayRequest, caller: InternalCaller, notifier: Service
) -> ReplayQueued:
    return await notifier.webhooks.replay(caller.tenant_id, webhook_id, body)


@router.post("/internal/webhooks/{webhook_id}/test", status_code=202)
async def test_webhook(
    webhook_id: WebhookId, caller: InternalCaller, notifier: Service
) -> TestQueued:
    return await notifier.webhooks.send_test(caller.tenant_id, webhook_id)


# --- The WebSocket API on the API Gateway edge (edge.py); the gateway's Lambda calls these ---

ConnectionId = Annotated[
    str,
    Path(
        description="API Gateway's id of the client connection.",
        pattern=r"^[A-Za-z0-9+/=_-]{1,128}$",
    ),
]


class EdgeRefusal(BaseModel):
    """Why the gateway refused a subscribe frame (the task is not the tenant's, or tasks could
    not say): sent to the client as the ``error`` frame."""

    status: Annotated[int, Field(ge=400, le=599)]
    title: Annotated[str, Field(max_length=200)]
    detail: Annotated[str, Field(max_length=1000)] = ""


class EdgeFrame(BaseModel):
    text: Annotated[str, Field(max_length=32_768, description="The client's frame, as sent.")]
    refusal: EdgeRefusal | None = None


def _edge(notifier: Notifier) -> EdgeDelivery:
    if notifier.edge is None:
        raise Problem(
            404,
            "Not Found",
            "The WebSocket API edge is not configured on this notifier "
            "(RELAY_EDGE_CONNECTIONS_TABLE, RELAY_EDGE_WS_ENDPOINT).",
        )
    return notifier.edge


@router.put("/internal/edge/connections/{connection_id}", status_code=204)
async def edge_connect(
    connection_id: ConnectionId, caller: InternalCaller, notifier: Service
) -> None:
    await _edge(notifier).connect(connection_id, caller.tenant_id)


@router.delete("/internal/edge/connections/{connection_id}", status_code=204)
async def edge_disconnect(
    connection_id: ConnectionId, caller: InternalCaller, notifier: Service
) -> None:
    await _edge(notifier).disconnect(connection_id, caller.tenant_id)


@router.post("/internal/edge/connections/{connection_id}/frames", status_code=204)
async def edge_frame(
    connection_id: ConnectionId, body: EdgeFrame, caller: InternalCaller, notifier: Service
) -> None:
    refusal = None if body.refusal is None else body.refusal.model_dump()
    try:
        await _edge(notifier).receive(connection_id, caller.tenant_id, body.text, refusal)
    except UnknownConnection as exc:
        raise Problem(404, "Not Found", f"No connection {connection_id}.") from exc
