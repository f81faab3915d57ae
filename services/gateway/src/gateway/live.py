"""``/v1/ws``: a client's live connection and its subscriptions (DESIGN.md, *Live updates over
WebSocket*).

The gateway speaks the subscription protocol to the client and follows each subscription as a
share of this process's one subscription on the notifier for that task or for the tenant's
``*`` (links.py): a task followed by a thousand clients is one subscription upstream. Frames
keep the notifier's promises: per task, events in seq order without gaps or repeats, ``end``
after the terminal event; ``*`` leaves out tasks the client follows for themselves and never
sends an event of a task at or below what this connection has already sent of it. The gateway
checks that each task the client subscribes to is the tenant's (tasks answers; another tenant's
task gets a 404 ``error`` frame and never reaches the notifier).

What the client is sent waits in a bounded outbox; a client that falls
``RELAY_WS_SEND_QUEUE_FRAMES`` behind for ``RELAY_WS_SEND_TIMEOUT_SECONDS`` is closed with 1013.
When the notifier connection a subscription rides on ends (a restart), the client is closed
with 1012 and resumes with ``after``: nothing is lost, the timelines are durable. See
docs/adr/0012-live-updates-over-websocket.md and docs/adr/0026-shared-live-subscriptions.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from uuid import UUID

from starlette.websockets import WebSocket

from gateway.links import Follower, Frame, Subject
from gateway.service import Gateway
from relay_shared.sockets import (
    ALL_TASKS,
    Outbox,
    Ping,
    Subscribe,
    Unsubscribe,
    control,
    error,
    parse_frame,
    serve_socket,
)

log = logging.getLogger(__name__)

# Highest seq sent per task on one connection, for this many tasks (most recent first kept).
SENT_TASKS_TRACKED = 10_000


class LiveSession:
    """The subscriptions of one tenant's connection; ``outbox`` is what to send, in order."""

    def __init__(
        self, gateway: Gateway, tenant_id: str, *, max_subscriptions: int, outbox: Outbox
    ) -> None:
        self._gateway = gateway
        self._tenant = tenant_id
        self._max = max_subscriptions
        self.outbox = outbox
        # each subscription's share and the task forwarding it (once `subscribed` is queued)
        self._followers: dict[Subject, tuple[Follower, asyncio.Task[None] | None]] = {}
        self._sent: OrderedDict[UUID, int] = OrderedDict()
        # a subscription that cannot go on closes the connection with this code
        self._closing: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def closed(self) -> int:
        """The close code, once a subscription ends the connection."""
        return await self._closing

    async def receive(self, text: str) -> None:
        """Handle one client frame."""
        try:
            frame = parse_frame(text)
        except ValueError as exc:
            await self.outbox.put(error(400, "Bad Request", f"Unreadable frame: {exc}"))
            return
        if isinstance(frame, Ping):
            await self.outbox.put(control("pong"))
        elif isinstance(frame, Unsubscribe):
            await self._leave(frame.task_id)
            await self.outbox.put(control("unsubscribed", frame.task_id))
        else:
            await self._subscribe(frame)

    async def close(self) -> None:
        for subject in list(self._followers):
            await self._leave(subject)

    async def _subscribe(self, frame: Subscribe) -> None:
        subject = frame.task_id
        refusal = self._refusal(frame)
        if refusal is None and isinstance(subject, UUID):
            problem = await self._gateway.task_refusal(self._tenant, subject)
            if problem is not None:
                refusal = error(problem.status, problem.title, problem.detail or "", subject)
        if refusal is not None:
            await self.outbox.put(refusal)
            return
        follower = await self._gateway.live.follow(
            self._tenant, subject, frame.after, lambda: self._gateway.open_live(self._tenant)
        )
        if isinstance(follower, str):  # the notifier's refusal
            await self.outbox.put(follower)
            return
        self._followers[subject] = (follower, None)  # the connection ending meanwhile leaves it
        await self.outbox.put(control("subscribed", subject))
        if self._followers.get(subject) == (follower, None):
            forward = asyncio.create_task(self._forward(subject, follower), name=f"live {subject}")
            self._followers[subject] = (follower, forward)

    def _refusal(self, frame: Subscribe) -> str | None:
        """Why this connection may not take the subscription, as its ``error`` frame."""
        subject = frame.task_id
        if subject in self._followers:
            return error(409, "Conflict", "Already subscribed; unsubscribe first.", subject)
        if len(self._followers) >= self._max:
            detail = f"At most {self._max} subscriptions per connection; unsubscribe first."
            return error(429, "Too Many Subscriptions", detail, subject)
        if subject == ALL_TASKS and frame.after:
            return error(400, "Bad Request", "`*` has no history: drop `after`.", subject)
        return None

    async def _leave(self, subject: Subject) -> None:
        entry = self._followers.pop(subject, None)
        if entry is not None:
            follower, forward = entry
            if forward is not None:
                forward.cancel()
                await asyncio.wait([forward])
            await follower.broadcast.leave(follower)

    async def _forward(self, subject: Subject, follower: Follower) -> None:
        every_task = subject == ALL_TASKS
        async for batch in follower.batches():
            for frame in batch:
                if every_task and not self._wanted(frame):
                    continue
                if frame.task_id is not None and frame.seq is not None:
                    self._note_sent(frame.task_id, frame.seq)
                await self.outbox.put(frame.text)
        # the subscription is over (its `end` or `error` was the last frame) or its connection
        # to the notifier is (close_code)
        if self._followers.get(subject, (None,))[0] is follower:
            del self._followers[subject]
        if follower.close_code is not None and not self._closing.done():
            self._closing.set_result(follower.close_code)

    def _wanted(self, frame: Frame) -> bool:
        """Whether ``*`` sends this event: not when the task has its own subscription here
        (that sends it), nor when this connection has sent it (or a later one) already."""
        if frame.task_id is None or frame.seq is None:
            return True
        if frame.task_id in self._followers:
            return False
        sent = self._sent.get(frame.task_id)
        return sent is None or frame.seq > sent

    def _note_sent(self, task_id: UUID, seq: int) -> None:
        self._sent[task_id] = max(seq, self._sent.get(task_id, 0))
        self._sent.move_to_end(task_id)
        if len(self._sent) > SENT_TASKS_TRACKED:
            self._sent.popitem(last=False)


async def relay_live(
    websocket: WebSocket,
    gateway: Gateway,
    tenant_id: str,
    *,
    send_queue_frames: int,
    send_timeout_seconds: float,
    max_subscriptions: int,
) -> int | None:
    """Serve an accepted client connection until it ends; returns the close code sent to the
    client (None: the client left)."""
    outbox = Outbox(send_queue_frames, patience_seconds=send_timeout_seconds)
    session = LiveSession(gateway, tenant_id, max_subscriptions=max_subscriptions, outbox=outbox)
    try:
        return await serve_socket(
            websocket, on_text=session.receive, outbox=outbox, beside=[session.closed]
        )
    finally:
        # to the end even when the connection's task is cancelled (a server stopping): the
        # shared subscriptions it leaves must not keep its place
        await asyncio.shield(session.close())
