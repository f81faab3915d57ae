"""Every SSE client of this gateway that follows one task shares ONE stream from the notifier.

Without it a task with a thousand followers cost the notifier a thousand timeline streams
(database reads, live subscriptions, SSE encoding and writes, each for every event) and the
gateway a thousand upstream connections to read; with it, one of each per gateway process, and
the gateway writes each frame to each client. The notifier still checks the tenant of every
stream it serves; here a stream is shared only within a (tenant, task) pair, and the gateway has
confirmed that the task is that tenant's before a client joins.

A ``TimelineBroadcast`` reads the notifier's stream frame by frame, keeps the frames that carry
a seq (the newest, within ``HISTORY_BYTES`` per broadcast and ``HISTORY_BUDGET_BYTES`` for the
process) and hands each frame to every follower. A client joins with its resume point
(``Last-Event-ID``): it gets the kept frames after it, then the live ones, in seq order, with no
gap and no repeat; a client resuming from further back than the broadcast can replay gets a
stream of its own from the notifier, as before. A follower whose
client stops reading falls ``backlog_frames`` behind and its response ends (logged), so one
slow client never holds the others up; its EventSource resumes with ``Last-Event-ID`` and loses
nothing. The notifier's heartbeats reach every follower; the broadcast ends when the notifier's
stream does (after the terminal event, or a restart) and when its last follower leaves.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from uuid import UUID

from gateway.ports import ReplyStream

log = logging.getLogger(__name__)

# Frames a broadcast keeps for clients that join behind it, by size (the newest kept), and what
# all broadcasts of the process keep together: most tasks have one follower, who never needs
# them, so the process's budget bounds what sharing adds to its memory (a client who finds the
# frames it needs gone gets a stream of its own, as without sharing).
HISTORY_BYTES = 1024 * 1024
HISTORY_BUDGET_BYTES = 64 * 1024 * 1024
# Frames a follower's client may be behind before its stream ends (they are shared bytes: a
# backlog costs a reference each, not a copy).
BACKLOG_FRAMES = 1000

Key = tuple[str, UUID]  # (tenant, task)
OpenUpstream = Callable[[], Awaitable[ReplyStream]]


def sse_frames(buffer: bytearray, chunk: bytes) -> Iterator[bytes]:
    """The complete SSE frames (each ending with its blank line) once ``chunk`` is added to
    ``buffer``, which keeps the incomplete rest. The notifier ends lines with CRLF; LF alone
    is taken too."""
    buffer += chunk
    while True:
        crlf, lf = buffer.find(b"\r\n\r\n"), buffer.find(b"\n\n")
        ends = [end + size for end, size in ((crlf, 4), (lf, 2)) if end >= 0]
        if not ends:
            return
        end = min(ends)
        frame = bytes(buffer[:end])
        del buffer[:end]
        yield frame


def frame_seq(frame: bytes) -> int | None:
    """The seq in a frame's ``id:`` field; None for a comment (a heartbeat)."""
    if frame.startswith(b"id:"):
        start = 3
    elif (at := frame.find(b"\nid:")) >= 0:
        start = at + 4
    else:
        return None
    end = frame.find(b"\n", start)
    value = frame[start : end if end >= 0 else None].strip()
    return int(value) if value.isdigit() else None


class KeptBytes:
    """What the process's broadcasts keep, together."""

    def __init__(self) -> None:
        self.bytes = 0

    def add(self, size: int) -> None:
        self.bytes += size


class TimelineFollower:
    """One client's view of a broadcast: a ``ReplyStream`` that yields what the client has not
    had yet, as much as is waiting in one chunk."""

    status = 200

    def __init__(self, broadcast: TimelineBroadcast, after: int, frames: list[bytes]) -> None:
        self._broadcast = broadcast
        self._after = after
        self._waiting = deque(frames)
        self._wake = asyncio.Event()
        self._ended = False
        self.behind = False

    @property
    def headers(self) -> Mapping[str, str]:
        return {}

    def offer(self, seq: int | None, frame: bytes, backlog: int) -> bool:
        """Queue ``frame`` for the client; False when the client is too far behind to."""
        if seq is not None and seq <= self._after:
            return True  # the client resumed after it
        if len(self._waiting) >= backlog:
            return False
        self._waiting.append(frame)
        self._wake.set()
        return True

    def end(self) -> None:
        self._ended = True
        self._wake.set()

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            if self._waiting:
                chunk = b"".join(self._waiting)
                self._waiting.clear()
                yield chunk
            elif self._ended:
                return
            else:
                self._wake.clear()
                await self._wake.wait()

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])

    async def aclose(self) -> None:
        await self._broadcast.leave(self)


class TimelineBroadcast:
    """One notifier stream of one task, fanned out to this gateway's followers of it."""

    def __init__(
        self,
        upstream: ReplyStream,
        after: int,
        *,
        backlog_frames: int,
        kept: KeptBytes,
        on_end: Callable[[TimelineBroadcast], None],
    ) -> None:
        self._upstream = upstream
        self._history: deque[tuple[int, bytes]] = deque()
        self._history_bytes = 0
        self._kept = kept
        self._complete_after = after  # every seq-carrying frame after this one is kept
        self._followers: set[TimelineFollower] = set()
        self._backlog = backlog_frames
        self._on_end = on_end
        self.ended = False
        self._upstream_closed = False
        self._pump = asyncio.create_task(self._relay())

    def can_serve(self, after: int) -> bool:
        return not self.ended and after >= self._complete_after

    def join(self, after: int) -> TimelineFollower:
        """A follower resuming after seq ``after`` (``can_serve(after)`` must hold)."""
        kept = [frame for seq, frame in self._history if seq > after]
        follower = TimelineFollower(self, after, kept)
        self._followers.add(follower)
        return follower

    async def leave(self, follower: TimelineFollower) -> None:
        self._followers.discard(follower)
        follower.end()
        if not self._followers and not self._pump.done():
            self._finish()  # nobody is left to read it; nobody new joins it
            self._pump.cancel()
            await asyncio.wait([self._pump])
            await self._close_upstream()  # also when the pump was cancelled before it began

    async def _relay(self) -> None:
        buffer = bytearray()
        try:
            async for chunk in self._upstream.chunks():
                for frame in sse_frames(buffer, chunk):
                    self._hand_out(frame_seq(frame), frame)
        except Exception:
            # the followers' streams end; their clients resume with Last-Event-ID
            log.exception("relaying a task's event stream failed")
        finally:
            self._finish()
            await asyncio.shield(self._close_upstream())

    def _finish(self) -> None:
        if self.ended:
            return
        self.ended = True
        self._forget_history()
        self._on_end(self)
        for follower in self._followers:
            follower.end()

    async def _close_upstream(self) -> None:
        if not self._upstream_closed:
            self._upstream_closed = True
            await self._upstream.aclose()

    def _hand_out(self, seq: int | None, frame: bytes) -> None:
        if seq is not None:
            self._keep(seq, frame)
        for follower in [f for f in self._followers if not f.offer(seq, frame, self._backlog)]:
            log.warning(
                "an SSE client fell %d frames behind; its stream ends, and it resumes with "
                "Last-Event-ID",
                self._backlog,
            )
            follower.behind = True
            self._followers.discard(follower)
            follower.end()

    def _keep(self, seq: int, frame: bytes) -> None:
        self._history.append((seq, frame))
        self._history_bytes += len(frame)
        self._kept.add(len(frame))
        while self._history and (
            self._history_bytes > HISTORY_BYTES or self._kept.bytes > HISTORY_BUDGET_BYTES
        ):
            self._complete_after, old = self._history.popleft()
            self._history_bytes -= len(old)
            self._kept.add(-len(old))

    def _forget_history(self) -> None:
        self._kept.add(-self._history_bytes)
        self._history.clear()
        self._history_bytes = 0


class SharedTimelines:
    """This process's broadcasts, one per followed (tenant, task)."""

    def __init__(self, *, backlog_frames: int = BACKLOG_FRAMES) -> None:
        self._backlog = backlog_frames
        self.kept = KeptBytes()
        self._live: dict[Key, TimelineBroadcast] = {}
        # a broadcast being opened: followers arriving meanwhile wait for it instead of each
        # opening a stream of their own (None: it could not be opened)
        self._opening: dict[Key, asyncio.Future[TimelineBroadcast | None]] = {}

    def broadcasts(self) -> int:
        """Broadcasts running (for tests and diagnostics)."""
        return len(self._live)

    async def follow(self, key: Key, after: int, open_upstream: OpenUpstream) -> ReplyStream:
        """A stream of the task's frames after seq ``after``: a share of the task's broadcast,
        or (resuming from further back than it has, or an answer other than 200) what
        ``open_upstream`` answered."""
        broadcast = self._live.get(key)
        if broadcast is None and (opening := self._opening.get(key)) is not None:
            broadcast = await asyncio.shield(opening)
        if broadcast is not None and broadcast.can_serve(after):
            return broadcast.join(after)
        if broadcast is not None or key in self._opening:
            return await open_upstream()  # a client further back than the broadcast
        return await self._open(key, after, open_upstream)

    async def _open(self, key: Key, after: int, open_upstream: OpenUpstream) -> ReplyStream:
        opening: asyncio.Future[TimelineBroadcast | None] = (
            asyncio.get_running_loop().create_future()
        )
        self._opening[key] = opening
        broadcast = None
        try:
            upstream = await open_upstream()
            if upstream.status != 200:
                return upstream  # nothing to share: 204, or a refusal the caller reads
            broadcast = TimelineBroadcast(
                upstream,
                after,
                backlog_frames=self._backlog,
                kept=self.kept,
                on_end=self._forget(key),
            )
            self._live[key] = broadcast
            return broadcast.join(after)
        finally:
            del self._opening[key]
            opening.set_result(broadcast)

    def _forget(self, key: Key) -> Callable[[TimelineBroadcast], None]:
        def ended(broadcast: TimelineBroadcast) -> None:
            if self._live.get(key) is broadcast:
                del self._live[key]

        return ended
