"""``/v1/ws``: a client's live connection, relayed to one live connection on the notifier.

The notifier owns timelines and the subscription protocol (notifier/session.py); the gateway
says who the client is, checks that each task the client subscribes to is the tenant's (tasks
answers; another tenant's task gets a 404 ``error`` frame and never reaches the notifier), and
relays frames both ways. What the notifier sends waits in a bounded outbox; a client that falls
``RELAY_WS_SEND_QUEUE_FRAMES`` behind is closed with 1013. When the notifier connection ends
(a restart), the client is closed with 1012 and resumes with ``after``: nothing is lost, the
timelines are durable. See docs/adr/0012-live-updates-over-websocket.md.
"""

from __future__ import annotations

import logging

from starlette.websockets import WebSocket

from gateway.ports import LiveChannel
from gateway.service import Gateway, subscribed_task
from relay_shared.sockets import (
    SERVICE_RESTART,
    TRY_AGAIN_LATER,
    Outbox,
    error,
    serve_socket,
)

log = logging.getLogger(__name__)


async def relay_live(
    websocket: WebSocket,
    gateway: Gateway,
    tenant_id: str,
    upstream: LiveChannel,
    *,
    send_queue_frames: int,
    send_timeout_seconds: float,
) -> int | None:
    """Relay an accepted client connection until either side ends; returns the close code
    sent to the client (None: the client left).

    While the client's outbox is full the notifier is not read, so its own outbox fills: a
    slow client slows only its own connection pair, and each side bounds what it holds."""
    outbox = Outbox(send_queue_frames, patience_seconds=send_timeout_seconds)

    async def from_client(text: str) -> None:
        refusal = await gateway.subscribe_refusal(tenant_id, text)
        if refusal is not None:
            task_id = subscribed_task(text)
            await outbox.put(error(refusal.status, refusal.title, refusal.detail or "", task_id))
            return
        await upstream.send(text)  # a closed upstream ends the relay below

    async def from_upstream() -> int:
        while (frame := await upstream.receive()) is not None:
            await outbox.put(frame)
        code = upstream.close_code
        log.info("live connection to the notifier closed (%s)", code)
        # a notifier that found the gateway too slow says so; anything else is a restart
        return TRY_AGAIN_LATER if code == TRY_AGAIN_LATER else SERVICE_RESTART

    try:
        return await serve_socket(
            websocket, on_text=from_client, outbox=outbox, beside=[from_upstream]
        )
    finally:
        await upstream.aclose()
