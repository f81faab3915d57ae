"""Live updates through API Gateway's WebSocket API (``edge = "apigateway"``, ADR 0016).

API Gateway holds the client connections; the gateway's WebSocket Lambda
(gateway/lambda_ws.py) authenticates ``$connect`` and hands every connect, disconnect and
client frame here. This module keeps connections and subscriptions in a DynamoDB table
(``EdgeConnections``) and sends frames with ``PostToConnection`` (``ConnectionPoster``), with
the same frames and promises as ``/v1/ws`` (session.py): per task, events in seq order, no gaps,
no repeats, ``end`` after the terminal event.

Nothing about a connection lives in a process, so any replica serves any frame. Each task a
connection follows is one *cursor* item: the last seq sent and a short lease. Whoever holds the
lease is the cursor's only sender: it reads the timeline after the cursor, posts each event,
advances the cursor (a conditional write that also proves it still holds the lease) and
releases; then it looks once more, so an append that found the lease taken is never left
unsent. What starts a sender: a subscribe (the history), every append of the task
(``publish``, after commit), and a periodic ``resync`` of all cursors (an append whose trigger
was lost in a crash). A ``*`` subscription gets a cursor per task on that task's first append
after it. After the terminal event the cursor stays as a finished marker that nothing sends
from, so an append's fan-out arriving late cannot make a new ``*`` cursor and send the task
twice.

A post to a connection API Gateway says is gone removes the connection and everything of it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID

from notifier.models import TimelineEvent
from notifier.ports import (
    Clock,
    ConnectionGone,
    ConnectionPoster,
    EdgeConnections,
    EdgeCursor,
    TimelineReader,
)
from notifier.stream import Access, TimelineStream
from relay_shared.sockets import (
    ALL_TASKS,
    Ping,
    Subscribe,
    Unsubscribe,
    control,
    error,
    parse_frame,
)

log = logging.getLogger(__name__)

READ_BATCH = 100


class UnknownConnection(Exception):
    """No such connection of this tenant (never connected, gone, or another tenant's)."""


class EdgeDelivery:
    """The WebSocket API's connections, subscriptions and senders."""

    def __init__(
        self,
        connections: EdgeConnections,
        poster: ConnectionPoster,
        reader: TimelineReader,
        stream: TimelineStream,
        *,
        clock: Clock,
        max_subscriptions: int,
        connection_seconds: float = 2 * 3600 + 600,
        lease_seconds: float = 30.0,
        concurrency: int = 64,
    ) -> None:
        self._connections = connections
        self._poster = poster
        self._reader = reader
        self._stream = stream
        self._clock = clock
        self._max = max_subscriptions
        self._lifetime = timedelta(seconds=connection_seconds)
        self._lease = timedelta(seconds=lease_seconds)
        self._senders = asyncio.Semaphore(concurrency)
        self._background: set[asyncio.Task[None]] = set()

    # --- connections (the gateway's $connect / $disconnect) -----------------------------------

    async def connect(self, connection_id: str, tenant_id: str) -> None:
        await self._connections.add_connection(
            connection_id, tenant_id, expires_at=self._clock() + self._lifetime
        )

    async def disconnect(self, connection_id: str, tenant_id: str) -> None:
        if await self._connections.tenant_of(connection_id) == tenant_id:
            await self._connections.remove_connection(connection_id)

    # --- client frames (the gateway's $default) ------------------------------------------------

    async def receive(
        self, connection_id: str, tenant_id: str, text: str, refusal: dict[str, Any] | None
    ) -> None:
        """One client frame. ``refusal`` is the gateway's answer for a subscribe to a task the
        tenant does not own (or whose owner it could not learn); it is sent as the ``error``."""
        if await self._connections.tenant_of(connection_id) != tenant_id:
            raise UnknownConnection(connection_id)
        try:
            frame = parse_frame(text)
        except ValueError as exc:
            await self._post(connection_id, error(400, "Bad Request", f"Unreadable frame: {exc}"))
            return
        if isinstance(frame, Ping):
            await self._post(connection_id, control("pong"))
        elif isinstance(frame, Unsubscribe):
            await self._unsubscribe(connection_id, frame.task_id)
        elif refusal is not None:
            await self._post(
                connection_id,
                error(
                    int(refusal.get("status", 404)),
                    str(refusal.get("title", "Not Found")),
                    str(refusal.get("detail", "")),
                    frame.task_id,
                ),
            )
        else:
            await self._subscribe(connection_id, tenant_id, frame)

    async def _subscribe(self, connection_id: str, tenant_id: str, frame: Subscribe) -> None:
        key = frame.task_id
        if await self._connections.subscriptions(connection_id) >= self._max:
            detail = f"At most {self._max} subscriptions per connection; unsubscribe first."
            await self._post(connection_id, error(429, "Too Many Subscriptions", detail, key))
            return
        expires_at = self._clock() + self._lifetime
        if not isinstance(key, UUID):  # ALL_TASKS
            if frame.after:
                detail = "`*` has no history: drop `after`."
                await self._post(connection_id, error(400, "Bad Request", detail, key))
            elif await self._connections.add_all_tasks(connection_id, tenant_id, expires_at):
                await self._post(connection_id, control("subscribed", key))
            else:
                await self._post(connection_id, _already(key))
            return
        access = await self._stream.access(key, tenant_id, after_seq=frame.after)
        if access is Access.HIDDEN:
            await self._post(connection_id, error(404, "Not Found", f"No task {key}.", key))
            return
        if access is Access.FINISHED:
            await self._post(connection_id, control("subscribed", key))
            await self._post(connection_id, control("end", key))
            return
        # Created holding the lease, so no append's sender can post before `subscribed`.
        cursor = EdgeCursor(connection_id, tenant_id, key, frame.after, explicit=True)
        lease_until = self._clock() + self._lease
        token = uuid.uuid4().hex
        if not await self._connections.add_cursor(
            cursor, owner=token, lease_until=lease_until, expires_at=expires_at
        ):
            await self._post(connection_id, _already(key))
            return
        await self._post(connection_id, control("subscribed", key))
        self._spawn(self._send(cursor, holding=token))

    async def _unsubscribe(self, connection_id: str, key: UUID | str) -> None:
        if isinstance(key, UUID):
            await self._connections.remove_cursor(connection_id, key)
        else:
            await self._connections.remove_all_tasks(connection_id)
        await self._post(connection_id, control("unsubscribed", key))

    # --- senders -----------------------------------------------------------------------------

    async def publish(self, events: Sequence[TimelineEvent]) -> None:
        """After an append was committed: start the senders of every connection following
        these tasks. Returns at once; the sending runs in the background."""
        first: dict[UUID, TimelineEvent] = {}
        for event in events:
            first.setdefault(event.task_id, event)
        for event in first.values():
            self._spawn(self._fan_out(event))

    async def _fan_out(self, first: TimelineEvent) -> None:
        expires_at = self._clock() + self._lifetime
        for connection_id in await self._connections.following_all(first.tenant_id):
            # the `*` subscription follows this task from its first append seen after it
            cursor = EdgeCursor(connection_id, first.tenant_id, first.task_id, first.seq - 1)
            await self._connections.add_cursor(cursor, expires_at=expires_at)
        for cursor in await self._connections.cursors_of_task(first.task_id):
            self._spawn(self._send(cursor))

    async def resync(self) -> None:
        """Start a sender for every cursor (one whose lease is held is skipped cheaply)."""
        for cursor in await self._connections.all_cursors():
            self._spawn(self._send(cursor))

    async def _send(self, cursor: EdgeCursor, *, holding: str | None = None) -> None:
        """Send what the cursor has not sent yet, while holding its lease (``holding``: the
        token of a lease already taken). Every sender has its own token, so two senders never
        hold one cursor, whichever replicas they run in."""
        async with self._senders:
            while True:
                token = holding or uuid.uuid4().hex
                if holding is None:
                    claimed = await self._connections.claim(
                        cursor, owner=token, lease_until=self._clock() + self._lease
                    )
                    if claimed is None:
                        return  # another sender holds it (and looks again after), or it is gone
                    cursor = claimed
                holding = None
                try:
                    sent = await self._send_held(cursor, token)
                except ConnectionGone:
                    log.info("edge connection %s is gone; removing it", cursor.connection_id)
                    await self._connections.remove_connection(cursor.connection_id)
                    return
                if sent is None or not await self._connections.release(cursor, owner=token):
                    return  # finished, unsubscribed, or taken over
                # an append whose sender found the lease taken while we held it: look again
                if not await self._reader.events_after(
                    cursor.task_id, cursor.tenant_id, sent, limit=1
                ):
                    return
                cursor = cursor.at(sent)

    async def _send_held(self, cursor: EdgeCursor, token: str) -> int | None:
        """Post the events after the cursor, advancing it after each; the last seq sent, or
        None when the cursor is done: the terminal event went out (the cursor is removed), or
        the lease was lost (unsubscribed, or taken over after a stall)."""
        sent = cursor.after
        while batch := await self._reader.events_after(
            cursor.task_id, cursor.tenant_id, sent, limit=READ_BATCH
        ):
            for event in batch:
                await self._poster.post(cursor.connection_id, event.client_json)
                sent = event.seq
                if event.terminal:
                    if cursor.explicit:
                        await self._poster.post(
                            cursor.connection_id, control("end", cursor.task_id)
                        )
                    await self._connections.finish(cursor.at(sent), owner=token)
                    return None
                lease_until = self._clock() + self._lease
                if not await self._connections.advance(
                    cursor.at(sent), owner=token, lease_until=lease_until
                ):
                    return None
        return sent

    async def _post(self, connection_id: str, frame: str) -> None:
        try:
            await self._poster.post(connection_id, frame)
        except ConnectionGone:
            await self._connections.remove_connection(connection_id)

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(self._logged(work))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    @staticmethod
    async def _logged(work: Any) -> None:
        try:
            await work
        except Exception as exc:  # the next append or resync picks the cursor up again
            log.warning("edge delivery failed: %r", exc)

    async def idle(self) -> None:
        """Wait until no sender is running (tests, and a clean stop)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)


def _already(key: object) -> str:
    return error(409, "Conflict", "Already subscribed; unsubscribe first.", key)


__all__ = ["ALL_TASKS", "EdgeDelivery", "UnknownConnection"]
