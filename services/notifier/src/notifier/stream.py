"""Following a task's timeline: stored events first, then live ones, in seq order, no gaps.

Subscribe to the live feed FIRST, then read the database: an event committed in between is
either in the read or arrives live. Live events at or below the last sent seq are repeats and
skipped; one beyond the next expected seq means something was missed, so the gap is read from
the database. An idle stream also re-reads every ``resync_seconds`` in case a publish was lost.
The stream ends after the terminal event, which the timeline keeps last.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from enum import Enum
from uuid import UUID

from notifier.models import TimelineEvent
from notifier.ports import LiveFeed, TimelineReader

READ_BATCH = 500


class Access(Enum):
    FOLLOW = "follow"
    HIDDEN = "hidden"  # another tenant's timeline: answer exactly like a missing task
    FINISHED = "finished"  # the caller already has the terminal event: nothing will follow


class TimelineStream:
    def __init__(self, reader: TimelineReader, feed: LiveFeed, *, resync_seconds: float) -> None:
        self._reader = reader
        self._feed = feed
        self._resync = resync_seconds

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
