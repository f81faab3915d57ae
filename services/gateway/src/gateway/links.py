"""Every WebSocket client of this gateway that follows one task shares ONE subscription on the
notifier, and a tenant's ``*`` subscribers share one ``*`` subscription.

Without it a task followed by a thousand clients cost the notifier a thousand live connections,
each following the timeline for itself (a live subscription, database reads, encoding and a
socket write per event), and the gateway a thousand upstream connections to read. The same
sharing as the SSE streams' (timelines.py, ADR 0024), on the subscription protocol
(DESIGN.md, *Live updates over WebSocket*; ADR 0026):

- A ``Link`` is one live connection to the notifier for one tenant. It carries up to
  ``RELAY_WS_MAX_SUBSCRIPTIONS`` subscriptions, one per followed task, and routes each frame the
  notifier sends to the ``Broadcast`` of the task it names. The tenant's ``*`` subscription has
  a link of its own: on a link that also followed tasks, the notifier would leave those tasks
  out of ``*``.
- A ``Broadcast`` hands each frame to every ``Follower`` (one per client subscription) and keeps
  the task's newest frames (as timelines.py does, within the same process budget): a client
  subscribing with ``after`` joins it when the kept frames reach back that far, and gets a
  subscription of its own, on a link of its own, when they do not.
- A follower whose client falls ``backlog_frames`` behind is dropped and its client closed with
  1013 (it resumes with ``after``): one slow client never holds the others up. When a link
  ends (a notifier restart), every client with a subscription on it is closed with 1012, as
  each was when it had a connection of its own; the timelines are durable and ``after``
  resumes them.

The gateway confirms that a task is the tenant's before a client joins (live.py); the notifier
still checks the tenant of every subscription it serves.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from uuid import UUID

from gateway.ports import LiveChannel
from gateway.timelines import HISTORY_BUDGET_BYTES, HISTORY_BYTES, KeptBytes
from relay_shared.sockets import ALL_TASKS, SERVICE_RESTART, TRY_AGAIN_LATER, error

log = logging.getLogger(__name__)

# Frames a client may be behind its subscription's broadcast before its connection closes
# (1013). They are shared frames (a reference each); a history replay arrives at the notifier's
# pace, not the client's, so the bound is well above the send queue.
BACKLOG_FRAMES = 10_000

Subject = UUID | str  # a task, or ALL_TASKS
Connect = Callable[[], Awaitable[LiveChannel]]


@dataclass(frozen=True, slots=True)
class Frame:
    """A frame from the notifier as the client gets it, with the task and seq of an event."""

    text: str
    task_id: UUID | None = None
    seq: int | None = None


class Follower:
    """One client subscription's share of a broadcast."""

    def __init__(self, broadcast: Broadcast, after: int, frames: list[Frame]) -> None:
        self.broadcast = broadcast
        self._after = after
        self._waiting = deque(frames)
        self._wake = asyncio.Event()
        self._ended = False
        # set when the subscription ends without its last frame: the client's connection
        # closes with this code
        self.close_code: int | None = None

    def offer(self, frame: Frame, backlog: int) -> bool:
        """Queue ``frame``; False when the client is too far behind to."""
        if frame.seq is not None and frame.seq <= self._after:
            return True  # the client subscribed after it
        if len(self._waiting) >= backlog:
            return False
        self._waiting.append(frame)
        self._wake.set()
        return True

    def end(self, close_code: int | None = None) -> None:
        if not self._ended:
            self._ended = True
            self.close_code = close_code
            self._wake.set()

    async def batches(self) -> AsyncIterator[list[Frame]]:
        """What has arrived for the client, as much as is waiting at a time, until the end."""
        while True:
            if self._waiting:
                batch = list(self._waiting)
                self._waiting.clear()
                yield batch
            elif self._ended:
                return
            else:
                self._wake.clear()
                await self._wake.wait()


class Broadcast:
    """One subscription on a link (a task's, or the tenant's ``*``), handed to its followers."""

    def __init__(
        self,
        subject: Subject,
        after: int,
        *,
        backlog_frames: int,
        kept: KeptBytes,
        on_end: Callable[[Broadcast], None],
    ) -> None:
        self.subject = subject
        self.link: Link | None = None
        # None once the notifier says ``subscribed``; the ``error`` frame when it refuses
        self.opened: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self.ended = False
        self._followers: set[Follower] = set()
        self._history: deque[Frame] = deque()
        self._history_bytes = 0
        self._kept = kept
        self._complete_after = after  # every event after this seq is kept
        self._backlog = backlog_frames
        self._on_end = on_end

    def can_serve(self, after: int) -> bool:
        return not self.ended and after >= self._complete_after

    def join(self, after: int) -> Follower:
        """A follower from seq ``after`` on (``can_serve(after)`` must hold)."""
        kept = [frame for frame in self._history if frame.seq is not None and frame.seq > after]
        follower = Follower(self, after, kept)
        self._followers.add(follower)
        return follower

    async def leave(self, follower: Follower) -> None:
        self._followers.discard(follower)
        follower.end()
        if not self._followers and not self.ended:
            self.finish()  # nobody new joins it
            if self.link is not None:
                await self.link.unsubscribe(self.subject)

    def subscribed(self) -> None:
        if not self.opened.done():
            self.opened.set_result(None)

    def hand_out(self, frame: Frame) -> None:
        if frame.seq is not None and self.subject != ALL_TASKS:
            self._keep(frame)
        for follower in [f for f in self._followers if not f.offer(frame, self._backlog)]:
            log.warning(
                "a live client fell %d frames behind its subscription; it is closed (1013) "
                "and resumes with `after`",
                self._backlog,
            )
            self._followers.discard(follower)
            follower.end(TRY_AGAIN_LATER)

    def finish(self, close_code: int | None = None, *, refusal: str | None = None) -> None:
        """No more frames: after its last one (``end`` or ``error``: ``close_code`` None), when
        the notifier refused it (``refusal``), or when its link ended (``close_code``)."""
        if self.ended:
            return
        self.ended = True
        if not self.opened.done():
            self.opened.set_result(refusal or _unavailable(self.subject))
        self._kept.add(-self._history_bytes)
        self._history.clear()
        self._history_bytes = 0
        self._on_end(self)
        for follower in self._followers:
            follower.end(close_code)

    def _keep(self, frame: Frame) -> None:
        self._history.append(frame)
        self._history_bytes += len(frame.text)
        self._kept.add(len(frame.text))
        while self._history and (
            self._history_bytes > HISTORY_BYTES or self._kept.bytes > HISTORY_BUDGET_BYTES
        ):
            old = self._history.popleft()
            self._complete_after = old.seq or self._complete_after
            self._history_bytes -= len(old.text)
            self._kept.add(-len(old.text))


def _unavailable(subject: Subject) -> str:
    detail = "Cannot follow it right now; subscribe again shortly."
    return error(503, "Service Unavailable", detail, subject)


class Link:
    """One live connection to the notifier, carrying subscriptions of one tenant."""

    def __init__(
        self, channel: LiveChannel, *, capacity: int, on_close: Callable[[Link], None]
    ) -> None:
        self._channel = channel
        self.capacity = capacity
        self._broadcasts: dict[Subject, Broadcast] = {}
        self._leaving: set[Subject] = set()  # unsubscribed; its last frames may still come
        self._on_close = on_close
        self.closed = False
        self._reader = asyncio.create_task(self._read(), name="live link")

    @property
    def idle(self) -> bool:
        return not self._broadcasts

    def can_carry(self, subject: Subject) -> bool:
        """Whether it has room for a subscription to ``subject`` (not while one to it is being
        unsubscribed: that one's last frames would reach the new one)."""
        return (
            not self.closed
            and subject not in self._leaving
            and subject not in self._broadcasts
            and len(self._broadcasts) + len(self._leaving) < self.capacity
        )

    async def subscribe(self, broadcast: Broadcast, after: int) -> None:
        """Carry ``broadcast`` (``can_carry`` must hold); its ``opened`` says how it went."""
        broadcast.link = self
        self._broadcasts[broadcast.subject] = broadcast
        frame: dict[str, object] = {"type": "subscribe", "task_id": str(broadcast.subject)}
        if after:
            frame["after"] = after
        await self._channel.send(json.dumps(frame))  # a closed link finishes it (_read)

    async def unsubscribe(self, subject: Subject) -> None:
        if self._broadcasts.pop(subject, None) is None or self.closed:
            return
        if not self._broadcasts:
            await self.aclose()  # nothing else on it: the connection goes
            return
        self._leaving.add(subject)
        await self._channel.send(json.dumps({"type": "unsubscribe", "task_id": str(subject)}))

    async def aclose(self) -> None:
        self._close()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
        await self._channel.aclose()

    def _close(self) -> None:
        if not self.closed:
            self.closed = True
            self._on_close(self)

    async def _read(self) -> None:
        try:
            while (text := await self._channel.receive()) is not None:
                self._route(text)
                if not self._broadcasts:
                    code = None  # nothing left to follow: the connection goes
                    break
            else:
                code = self._channel.close_code
                log.info("live connection to the notifier closed (%s)", code)
        except Exception:
            log.exception("reading a live connection to the notifier failed")
            code = None
        self._close()
        # a notifier that found the gateway too slow says so; anything else is a restart
        close_code = TRY_AGAIN_LATER if code == TRY_AGAIN_LATER else SERVICE_RESTART
        broadcasts = list(self._broadcasts.values())
        self._broadcasts.clear()
        for broadcast in broadcasts:
            broadcast.finish(close_code)
        await self._channel.aclose()

    def _route(self, text: str) -> None:
        try:
            frame = json.loads(text)
            kind, raw_subject = frame["type"], frame["task_id"]
            subject: Subject = raw_subject if raw_subject == ALL_TASKS else UUID(raw_subject)
        except (ValueError, TypeError, KeyError):
            log.error("the notifier sent a live frame without a task: %.200s", text)
            return
        if kind == "unsubscribed":
            self._leaving.discard(subject)
            return
        if kind in ("end", "error"):  # the notifier has dropped the subscription
            broadcast = self._broadcasts.pop(subject, None)
            if broadcast is not None and not broadcast.opened.done():
                broadcast.finish(refusal=text)
            elif broadcast is not None:
                broadcast.hand_out(Frame(text))
                broadcast.finish()
            return
        broadcast = self._broadcasts.get(subject) or self._broadcasts.get(ALL_TASKS)
        if broadcast is None:
            return  # an unsubscribed task's last frames
        if kind == "subscribed":
            broadcast.subscribed()
        elif isinstance(seq := frame.get("seq"), int) and isinstance(subject, UUID):
            broadcast.hand_out(Frame(text, subject, seq))


class SharedLive:
    """This process's links and broadcasts: one broadcast per followed (tenant, task) and per
    tenant following ``*``."""

    def __init__(
        self, *, kept: KeptBytes, capacity: int, backlog_frames: int = BACKLOG_FRAMES
    ) -> None:
        self._kept = kept
        self._capacity = capacity
        self._backlog = backlog_frames
        self._broadcasts: dict[tuple[str, Subject], Broadcast] = {}
        self._links: dict[tuple[str, bool], list[Link]] = {}  # (tenant, for `*`) -> links
        self._connecting: dict[tuple[str, bool], asyncio.Future[None]] = {}

    def broadcasts(self) -> int:
        """Broadcasts running (for tests and diagnostics)."""
        return len(self._broadcasts)

    async def follow(
        self, tenant_id: str, subject: Subject, after: int, connect: Connect
    ) -> Follower | str:
        """A share of the subject's broadcast from seq ``after`` on, or the ``error`` frame
        that refused it. The caller leaves the broadcast when done (``Broadcast.leave``)."""
        key = (tenant_id, subject)
        broadcast = self._broadcasts.get(key)
        opening = None
        if broadcast is None or not broadcast.can_serve(after):
            shared = broadcast is None  # a client further back than it gets its own
            broadcast = Broadcast(
                subject,
                after,
                backlog_frames=self._backlog,
                kept=self._kept,
                on_end=self._forget(key) if shared else _alone,
            )
            if shared:
                self._broadcasts[key] = broadcast  # clients arriving meanwhile join it
            opening = self._open(tenant_id, broadcast, after, connect, shared=shared)
        follower = broadcast.join(after)
        try:
            if opening is not None:
                # to the end even if this client goes: others may be waiting for it
                await asyncio.shield(opening)
            refusal = await asyncio.shield(broadcast.opened)
        except asyncio.CancelledError:  # the client went meanwhile
            await asyncio.shield(broadcast.leave(follower))
            raise
        return follower if refusal is None else refusal

    async def _open(
        self, tenant_id: str, broadcast: Broadcast, after: int, connect: Connect, *, shared: bool
    ) -> None:
        try:
            if shared:
                link = await self._link(tenant_id, broadcast.subject, connect)
            else:
                link = Link(await connect(), capacity=1, on_close=_alone)
        except Exception as exc:
            log.warning("cannot open a live connection to the notifier: %r", exc)
            broadcast.finish()
            return
        if broadcast.ended:  # every client of it left meanwhile
            if link.idle:
                await link.aclose()
            return
        await link.subscribe(broadcast, after)

    async def _link(self, tenant_id: str, subject: Subject, connect: Connect) -> Link:
        """A connection of the tenant's that can carry a subscription to ``subject`` (``*``
        alone on its own); one being opened is waited for rather than opening another."""
        key = (tenant_id, subject == ALL_TASKS)
        while True:
            room = [link for link in self._links.get(key, []) if link.can_carry(subject)]
            if room:
                return room[0]
            if (pending := self._connecting.get(key)) is None:
                break
            await asyncio.shield(pending)
        self._connecting[key] = pending = asyncio.get_running_loop().create_future()
        try:
            links = self._links.setdefault(key, [])
            link = Link(await connect(), capacity=self._capacity, on_close=self._drop(key, links))
            links.append(link)
            return link
        finally:
            del self._connecting[key]
            pending.set_result(None)

    def _forget(self, key: tuple[str, Subject]) -> Callable[[Broadcast], None]:
        def ended(broadcast: Broadcast) -> None:
            if self._broadcasts.get(key) is broadcast:
                del self._broadcasts[key]

        return ended

    def _drop(self, key: tuple[str, bool], links: list[Link]) -> Callable[[Link], None]:
        def closed(link: Link) -> None:
            if link in links:
                links.remove(link)
            if not links and self._links.get(key) is links:
                del self._links[key]  # a tenant that follows nothing any more

        return closed


def _alone(_: object) -> None:
    """A private broadcast or link is in no registry."""
