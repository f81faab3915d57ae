"""Following a task's timeline: stored events first, then live ones, in seq order, no gaps.

Subscribe to the live feed FIRST, then read the database: an event committed in between is
either in the read or arrives live. Live events at or below the last sent seq are repeats and
skipped; one beyond the next expected seq means something was missed, so the gap is read from
the database. An idle stream also re-reads every ``resync_seconds`` in case a publish was lost.
The stream ends after the terminal event, which the timeline keeps last.

A tenant's stream (``follow_tenant``) has no history: it starts with the next live event of
any of the tenant's tasks. Per task it keeps the same promise (seq order, no gaps, no repeats):
a jump in a task's seqs is filled from the database, and when the feed may have lost messages
(or nothing came for ``tenant_resync_seconds``) the tasks it has seen and not seen end are
re-read.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from enum import Enum
from uuid import UUID

from notifier.models import TimelineEvent
from notifier.ports import LiveFeed, TimelineReader

READ_BATCH = 500
# A tenant stream remembers where this many of the tenant's unfinished tasks stand.
TENANT_TASKS_TRACKED = 1000


class Access(Enum):
    FOLLOW = "follow"
    HIDDEN = "hidden"  # another tenant's timeline: answer exactly like a missing task
    FINISHED = "finished"  # the caller already has the terminal event: nothing will follow


class TimelineStream:
    def __init__(
        self,
        reader: TimelineReader,
        feed: LiveFeed,
        *,
        resync_seconds: float,
        tenant_resync_seconds: float = 60.0,
    ) -> None:
        self._reader = reader
        self._feed = feed
        self._resync = resync_seconds
        self._tenant_resync = tenant_resync_seconds

    async def access(self, task_id: UUID, tenant_id: str, *, after_seq: int = 0) -> Access:
        """No timeline yet may be followed: the task may be brand new, and the gateway has
        already checked with the tasks service that the caller owns it."""
        head = await self._reader.head(task_id)
        if head is None:
            return Access.FOLLOW
        if head.tenant_id != tenant_id:
            return Access.HIDDEN
        if head.terminal_seq is not None and after_seq >= head.terminal_seq:
            return Access.FINISHED
        return Access.FOLLOW

    async def follow(
        self, task_id: UUID, tenant_id: str, *, after_seq: int = 0
    ) -> AsyncIterator[TimelineEvent]:
        async with self._feed.listen(task_id) as live:
            last = after_seq
            reread = True
            while True:
                while reread:
                    batch = await self._reader.events_after(
                        task_id, tenant_id, last, limit=READ_BATCH
                    )
                    for stored in batch:
                        yield stored
                        last = stored.seq
                        if stored.terminal:
                            return
                    reread = len(batch) == READ_BATCH
                event = await live.next(within=self._resync)
                if event is None:
                    reread = True  # idle, re-subscribed or lagging: the database knows
                elif event.tenant_id != tenant_id or event.seq <= last:
                    continue  # not the caller's, or a repeat of what was sent
                elif event.seq > last + 1:
                    reread = True  # a gap: the database has the missing ones (and this one)
                else:
                    yield event
                    last = event.seq
                    if event.terminal:
                        return

    async def follow_tenant(
        self, tenant_id: str, *, on_listening: Callable[[], Awaitable[None]] | None = None
    ) -> AsyncIterator[TimelineEvent]:
        """Live events of every task of ``tenant_id``, from now on; never ends by itself.
        ``on_listening`` is awaited once the live feed listens: "now" starts there."""
        async with self._feed.listen_tenant(tenant_id) as live:
            if on_listening is not None:
                await on_listening()
            seen = TasksSeen()
            while True:
                event = await live.next(within=self._tenant_resync)
                if event is None:
                    for task_id, seq in seen.unfinished():
                        for stored in await self._reader.events_after(
                            task_id, tenant_id, seq, limit=READ_BATCH
                        ):
                            yield stored
                            seen.sent(stored)
                    continue
                if event.tenant_id != tenant_id:
                    continue
                last = seen.last(event.task_id)
                if last is not None and event.seq <= last:
                    continue  # a repeat, or already read from the database
                if last is not None and event.seq > last + 1:
                    # a gap: the database has the missing ones (and this one)
                    for stored in await self._reader.events_after(
                        event.task_id, tenant_id, last, limit=event.seq - last
                    ):
                        yield stored
                        seen.sent(stored)
                    continue
                yield event
                seen.sent(event)


class TasksSeen:
    """Where each task a tenant stream has seen stands: its last seq and whether it ended, for
    the ``TENANT_TASKS_TRACKED`` tasks that moved most recently."""

    def __init__(self) -> None:
        self._tasks: OrderedDict[UUID, tuple[int, bool]] = OrderedDict()

    def last(self, task_id: UUID) -> int | None:
        entry = self._tasks.get(task_id)
        return None if entry is None else entry[0]

    def sent(self, event: TimelineEvent) -> None:
        self._tasks[event.task_id] = (event.seq, event.terminal)
        self._tasks.move_to_end(event.task_id)
        if len(self._tasks) > TENANT_TASKS_TRACKED:
            self._tasks.popitem(last=False)

    def unfinished(self) -> list[tuple[UUID, int]]:
        return [(task_id, seq) for task_id, (seq, ended) in self._tasks.items() if not ended]
