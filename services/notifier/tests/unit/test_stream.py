"""Following a timeline: stored then live, no gaps, no repeats, ends after the terminal."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from uuid import UUID

from notifier.app import build
from notifier.models import TimelineEvent
from notifier.service import Notifier
from notifier.stream import Access, TimelineStream
from relay_devkit.testing import eventually
from relay_shared.events import DomainEvent

from .conftest import unit_settings
from .fakes import Fakes


def _stream(fakes: Fakes, resync_seconds: float = 5.0) -> TimelineStream:
    """The stream use case on the fakes, with its own re-read interval."""
    return build(unit_settings(sse_resync_seconds=resync_seconds), fakes.ports()).stream


async def _collect(events: AsyncIterator[TimelineEvent]) -> list[int]:
    return [e.seq async for e in events]


async def _record(notifier: Notifier, events: list[DomainEvent]) -> None:
    for event in events:
        await notifier.timelines.record(event)


async def _until_listening(fakes: Fakes, task_id: UUID) -> None:
    async def listeners() -> int:
        return len(fakes.feed.listeners.get(task_id, []))

    await eventually(listeners, within=2, interval=0.001)


async def test_a_stored_timeline_streams_whole_and_ends(
    fakes: Fakes, notifier: Notifier, task_events: Callable
) -> None:
    t = task_events()
    await _record(notifier, t.run(steps=2))
    seqs = await asyncio.wait_for(_collect(_stream(fakes).follow(t.task_id, "acme")), 2)
    assert seqs == [1, 2, 3, 4, 5, 6]
    assert fakes.feed.listeners[t.task_id] == []  # the subscription was released


async def test_resuming_after_a_seq_sends_only_what_follows(
    fakes: Fakes, notifier: Notifier, task_events: Callable
) -> None:
    t = task_events()
    await _record(notifier, t.run(steps=2))
    follow = _stream(fakes).follow(t.task_id, "acme", after_seq=4)
    assert await asyncio.wait_for(_collect(follow), 2) == [5, 6]


async def test_live_events_follow_the_stored_ones(
    fakes: Fakes, notifier: Notifier, task_events: Callable
) -> None:
    t = task_events()
    run = t.run(steps=2)
    await _record(notifier, run[:2])
    stream = _stream(fakes, resync_seconds=60)  # live only: a re-read would take a minute
    collecting = asyncio.create_task(_collect(stream.follow(t.task_id, "acme")))
    await _until_listening(fakes, t.task_id)
    await _record(notifier, run[2:])
    assert await asyncio.wait_for(collecting, 2) == [1, 2, 3, 4, 5, 6]


async def test_a_gap_in_live_events_is_filled_from_the_store(
    fakes: Fakes, notifier: Notifier, task_events: Callable
) -> None:
    t = task_events()
    run = t.run(steps=2)
    await _record(notifier, run[:1])
    stream = _stream(fakes, resync_seconds=60)
    collecting = asyncio.create_task(_collect(stream.follow(t.task_id, "acme")))
    await _until_listening(fakes, t.task_id)
    fakes.feed.broken = True  # seq 2 and 3 are appended but never published
    await _record(notifier, run[1:3])
    fakes.feed.broken = False
    await _record(notifier, run[3:])
    assert await asyncio.wait_for(collecting, 2) == [1, 2, 3, 4, 5, 6]


async def test_repeated_and_foreign_live_events_are_not_sent(
    fakes: Fakes, notifier: Notifier, task_events: Callable
) -> None:
    t = task_events()
    run = t.run(steps=1)
    await _record(notifier, run[:2])
    stream = _stream(fakes, resync_seconds=60)
    collecting = asyncio.create_task(_collect(stream.follow(t.task_id, "acme")))
    await _until_listening(fakes, t.task_id)
    first = fakes.store.rows[t.task_id].events[0]
    foreign = first.model_copy(update={"seq": 3, "tenant_id": "globex", "type": "task.failed"})
    await fakes.feed.publish([first, foreign])  # a repeat of seq 1, another tenant's seq 3
    await _record(notifier, run[2:])
    assert await asyncio.wait_for(collecting, 2) == [1, 2, 3, 4, 5]
    assert fakes.store.rows[t.task_id].events[2].type == "task.progressed"


async def test_an_idle_stream_rereads_the_store(
    fakes: Fakes, notifier: Notifier, task_events: Callable
) -> None:
    t = task_events()
    run = t.run(steps=1)
    stream = _stream(fakes, resync_seconds=0.05)
    collecting = asyncio.create_task(_collect(stream.follow(t.task_id, "acme")))
    await _until_listening(fakes, t.task_id)
    fakes.feed.broken = True  # nothing is published live at all
    await _record(notifier, run)
    assert await asyncio.wait_for(collecting, 2) == [1, 2, 3, 4, 5]


async def test_access_hides_other_tenants_and_knows_when_a_reader_has_finished(
    fakes: Fakes, notifier: Notifier, task_events: Callable
) -> None:
    t = task_events(tenant_id="acme")
    stream: TimelineStream = _stream(fakes)
    # no timeline yet: nothing to hide, the gateway vouched for the task
    assert await stream.access(t.task_id, "globex") is Access.FOLLOW
    await _record(notifier, [t.submitted()])
    assert await stream.access(t.task_id, "acme") is Access.FOLLOW
    assert await stream.access(t.task_id, "globex") is Access.HIDDEN
    await _record(notifier, [t.cancelled(attempt=0)])
    assert await stream.access(t.task_id, "acme", after_seq=1) is Access.FOLLOW
    assert await stream.access(t.task_id, "acme", after_seq=2) is Access.FINISHED
    assert await stream.access(t.task_id, "globex", after_seq=2) is Access.HIDDEN


async def test_closing_a_stream_releases_its_subscription(
    fakes: Fakes, notifier: Notifier, task_events: Callable
) -> None:
    t = task_events()
    await _record(notifier, [t.submitted()])
    follow = _stream(fakes, resync_seconds=60).follow(t.task_id, "acme")
    assert (await anext(follow)).seq == 1
    assert len(fakes.feed.listeners[t.task_id]) == 1
    await follow.aclose()
    assert fakes.feed.listeners[t.task_id] == []
