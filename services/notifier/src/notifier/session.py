"""One live connection's subscriptions, multiplexed onto one bounded outbox.

The client sends JSON frames (DESIGN.md, *Live updates over WebSocket*):

    {"type": "subscribe", "task_id": "<id>", "after": <seq, default 0>}  history, then live
    {"type": "subscribe", "task_id": "*"}                                the tenant's live events
    {"type": "unsubscribe", "task_id": "<id>|*"}
    {"type": "ping"}

and gets each timeline event as exactly the JSON of an SSE ``data:`` line
(``TimelineEvent.client_json``, one code path for both), plus control frames ``subscribed``,
``unsubscribed``, ``pong``, ``end`` (after a task's terminal event) and ``error`` (with
``status``, ``title`` and ``detail``). A bad frame gets an ``error`` and the connection stays
usable. Each task subscription follows the timeline like an SSE stream does (stream.py), so its
events come in seq order without gaps or repeats; the ``*`` subscription leaves tasks that have
their own subscription to it, and never sends an event of a task at or below what this
connection has already sent of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from uuid import UUID

from notifier.models import TimelineEvent
from notifier.stream import Access, TimelineStream
from relay_shared.sockets import (
    ALL_TASKS,
    Outbox,
    Ping,
    Subscribe,
    Unsubscribe,
    control,
    error,
    parse_frame,
)

log = logging.getLogger(__name__)

# Highest seq sent per task on one connection, for this many tasks (most recent first kept).
SENT_TASKS_TRACKED = 10_000


class LiveSession:
    """The subscriptions of one tenant's connection; ``outbox`` is what to send, in order."""

    def __init__(
        self,
        stream: TimelineStream,
        tenant_id: str,
        *,
        max_subscriptions: int,
        outbox: Outbox,
    ) -> None:
        self._stream = stream
        self._tenant = tenant_id
        self._max = max_subscriptions
        self.outbox = outbox
        self._followers: dict[UUID | str, asyncio.Task[None]] = {}
        self._sent: OrderedDict[UUID, int] = OrderedDict()

    @property
    def subscriptions(self) -> int:
        return len(self._followers)

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
            await self._unsubscribe(frame.task_id)
        else:
            await self._subscribe(frame)

    async def close(self) -> None:
        followers = list(self._followers.values())
        self._followers.clear()
        for follower in followers:
            follower.cancel()
        await asyncio.gather(*followers, return_exceptions=True)

    async def _subscribe(self, frame: Subscribe) -> None:
        key = frame.task_id
        if key in self._followers:
            await self.outbox.put(
                error(409, "Conflict", "Already subscribed; unsubscribe first.", key)
            )
            return
        if len(self._followers) >= self._max:
            await self.outbox.put(
                error(
                    429,
                    "Too Many Subscriptions",
                    f"At most {self._max} subscriptions per connection; unsubscribe first.",
                    key,
                )
            )
            return
        if not isinstance(key, UUID):  # ALL_TASKS
            if frame.after:
                await self.outbox.put(
                    error(400, "Bad Request", "`*` has no history: drop `after`.", key)
                )
                return
            self._start(key, self._tenant_events())
            return
        try:
            access = await self._stream.access(key, self._tenant, after_seq=frame.after)
        except Exception as exc:  # the database is away: this subscription fails, not the rest
            log.warning("live subscription %s of %s cannot start: %r", key, self._tenant, exc)
            detail = "Cannot read the timeline right now; subscribe again shortly."
            await self.outbox.put(error(503, "Service Unavailable", detail, key))
            return
        if access is Access.HIDDEN:
            await self.outbox.put(error(404, "Not Found", f"No task {key}.", key))
        elif access is Access.FINISHED:
            await self.outbox.put(control("subscribed", key))
            await self.outbox.put(control("end", key))
        else:
            # follow() listens before it reads the database: nothing after this is missed
            await self.outbox.put(control("subscribed", key))
            self._start(key, self._task_events(key, frame.after))

    def _start(self, key: UUID | str, frames: AsyncIterator[None]) -> None:
        """Run a subscription's follower (``*`` says ``subscribed`` itself, once the live feed
        listens: no event published after the frame can be missed)."""

        async def run() -> None:
            try:
                async for _ in frames:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # a database outage mid-stream: the client resubscribes with `after`
                log.warning("live subscription %s of %s failed: %r", key, self._tenant, exc)
                detail = "The subscription broke off; subscribe again with `after`."
                await self.outbox.put(error(503, "Service Unavailable", detail, key))
            finally:
                if self._followers.get(key) is asyncio.current_task():
                    del self._followers[key]

        self._followers[key] = asyncio.create_task(run(), name=f"live {key}")

    async def _unsubscribe(self, key: UUID | str) -> None:
        follower = self._followers.pop(key, None)
        if follower is not None:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
        await self.outbox.put(control("unsubscribed", key))

    async def _task_events(self, task_id: UUID, after: int) -> AsyncIterator[None]:
        async for event in self._stream.follow(task_id, self._tenant, after_seq=after):
            await self._send(event)
            yield None
        await self.outbox.put(control("end", task_id))

    async def _tenant_events(self) -> AsyncIterator[None]:
        async def listening() -> None:
            await self.outbox.put(control("subscribed", ALL_TASKS))

        async for event in self._stream.follow_tenant(self._tenant, on_listening=listening):
            if event.task_id in self._followers:
                continue  # the task's own subscription sends it
            sent = self._sent.get(event.task_id)
            if sent is not None and event.seq <= sent:
                continue
            await self._send(event)
            yield None

    async def _send(self, event: TimelineEvent) -> None:
        self._sent[event.task_id] = max(event.seq, self._sent.get(event.task_id, 0))
        self._sent.move_to_end(event.task_id)
        if len(self._sent) > SENT_TASKS_TRACKED:
            self._sent.popitem(last=False)
        await self.outbox.put(event.client_json)
