"""Serving one WebSocket connection: what the peer sends goes to a handler, what the service has
to say waits in a bounded outbox, and a peer too slow to read is closed with 1013 instead of
growing memory without bound.

The framing, pings (``RELAY_WS_PING_INTERVAL_SECONDS``) and the message size limit (1009) are
the server's (uvicorn with ``websockets``); this module only decides what to send and when to
stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Literal
from uuid import UUID

import anyio
from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, TypeAdapter, ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

log = logging.getLogger(__name__)

# Close codes (RFC 6455 section 7.4 and the IANA registry; 4xxx are the application's own)
NORMAL = 1000
GOING_AWAY = 1001
INTERNAL_ERROR = 1011
SERVICE_RESTART = 1012
TRY_AGAIN_LATER = 1013
UNAUTHENTICATED = 4401

# How long a close may wait for a peer that is not reading before the connection is dropped.
CLOSE_TIMEOUT_SECONDS = 5.0


# --- what a client of a live connection sends (DESIGN.md, *Live updates over WebSocket*): the
# notifier and the gateway read it alike ---

ALL_TASKS = "*"


class _Frame(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Subscribe(_Frame):
    type: Literal["subscribe"]
    task_id: UUID | Literal["*"]
    after: NonNegativeInt = 0


class Unsubscribe(_Frame):
    type: Literal["unsubscribe"]
    task_id: UUID | Literal["*"]


class Ping(_Frame):
    type: Literal["ping"]


ClientFrame = TypeAdapter[Subscribe | Unsubscribe | Ping](
    Annotated[Subscribe | Unsubscribe | Ping, Field(discriminator="type")]
)


def parse_frame(text: str) -> Subscribe | Unsubscribe | Ping:
    """The client's frame; raises ValueError saying what is wrong with it."""
    try:
        return ClientFrame.validate_json(text)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'frame'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise ValueError(problems) from exc


def control(kind: str, task_id: object = None, **fields: Any) -> str:
    """A control frame: ``{"type": kind, "task_id": ..., ...}`` (no ``task_id`` when None)."""
    frame: dict[str, Any] = {"type": kind}
    if task_id is not None:
        frame["task_id"] = str(task_id)
    return json.dumps(frame | fields)


def error(status: int, title: str, detail: str, task_id: object = None) -> str:
    return control("error", task_id, status=status, title=title, detail=detail)


class Outbox:
    """Frames waiting to be sent, at most ``limit``. A producer finding it full waits for room
    (a history replay goes at the reader's pace); one that waits ``patience_seconds`` in vain
    marks the peer as too slow, which closes the connection (1013)."""

    def __init__(self, limit: int, *, patience_seconds: float = 10.0) -> None:
        self._queue: asyncio.Queue[str] = asyncio.Queue(limit)
        self._patience = patience_seconds
        self.overflowed = asyncio.Event()

    async def put(self, frame: str) -> None:
        if self.overflowed.is_set():
            return
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            try:
                await asyncio.wait_for(self._queue.put(frame), self._patience)
            except TimeoutError:
                self.overflowed.set()

    async def get(self) -> str:
        return await self._queue.get()

    def get_nowait(self) -> str:
        """The next frame; raises asyncio.QueueEmpty when there is none."""
        return self._queue.get_nowait()

    def __len__(self) -> int:
        return self._queue.qsize()


# A task beside the connection (e.g. reading an upstream); it returns the close code to use
# when it ends, or None to leave the connection open.
Beside = Callable[[], Awaitable[int | None]]


async def serve_socket(
    websocket: WebSocket,
    *,
    on_text: Callable[[str], Awaitable[None]],
    outbox: Outbox,
    beside: Sequence[Beside] = (),
) -> int | None:
    """Run an accepted connection until the peer leaves, the outbox overflows (1013) or a
    ``beside`` task ends with a close code. Returns the close code sent (None: the peer left).

    Frames are handled one at a time, in order; a binary frame gets an ``error`` frame. A
    failure in any part closes the connection with 1011.
    """
    outcome: list[int | None] = []

    async with anyio.create_task_group() as group:

        def finish(code: int | None) -> None:
            if not outcome:
                outcome.append(code)
            group.cancel_scope.cancel()

        async def guarded(part: Callable[[], Awaitable[None]]) -> None:
            try:
                await part()
            except Exception as exc:
                log.error("websocket connection failed: %r", exc, exc_info=exc)
                finish(INTERNAL_ERROR)

        async def read() -> None:
            try:
                while True:
                    message = await websocket.receive()
                    if message["type"] == "websocket.disconnect":
                        break
                    text = message.get("text")
                    if text is None:
                        await outbox.put(
                            error(400, "Bad Request", "Send JSON text frames, not binary.")
                        )
                        continue
                    await on_text(text)
            except WebSocketDisconnect:
                pass
            finish(None)

        async def write() -> None:
            try:
                while True:
                    await websocket.send_text(await outbox.get())
            except (WebSocketDisconnect, OSError):
                finish(None)  # the peer is gone mid-write

        async def watch_overflow() -> None:
            await outbox.overflowed.wait()
            finish(TRY_AGAIN_LATER)

        def run_beside(task: Beside) -> Callable[[], Awaitable[None]]:
            async def run() -> None:
                code = await task()
                if code is not None:
                    finish(code)

            return run

        for part in (read, write, watch_overflow, *(run_beside(task) for task in beside)):
            group.start_soon(guarded, part)

    code = outcome[0] if outcome else None
    if code is not None:
        await close(websocket, code)
    return code


async def close(websocket: WebSocket, code: int, reason: str = "") -> None:
    """Close, waiting at most ``CLOSE_TIMEOUT_SECONDS`` for a peer that does not read."""
    if websocket.client_state is not WebSocketState.CONNECTED:
        return
    with contextlib.suppress(TimeoutError, RuntimeError, OSError, WebSocketDisconnect):
        await asyncio.wait_for(websocket.close(code, reason), CLOSE_TIMEOUT_SECONDS)
