"""One notifier stream per followed task and gateway, shared by every client following it."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Mapping

import pytest

from gateway import timelines
from gateway.ports import ReplyStream
from gateway.timelines import SharedTimelines, frame_seq, sse_frames

ACME_TASK = ("acme", uuid.uuid4())


def event(seq: int) -> bytes:
    return f'id: {seq}\r\nevent: task.progressed\r\ndata: {{"seq": {seq}}}\r\n\r\n'.encode()


PING = b": ping\r\n\r\n"


class Upstream:
    """A notifier stream the test feeds chunk by chunk."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.headers: Mapping[str, str] = {}
        self._chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.closed = False

    def feed(self, *chunks: bytes) -> None:
        for chunk in chunks:
            self._chunks.put_nowait(chunk)

    def finish(self) -> None:
        self._chunks.put_nowait(None)

    async def chunks(self) -> AsyncIterator[bytes]:
        while (chunk := await self._chunks.get()) is not None:
            yield chunk

    async def read(self) -> bytes:
        return b""

    async def aclose(self) -> None:
        self.closed = True


class Notifier:
    """Opens a new ``Upstream`` per call (slowly, like a round trip) and remembers each."""

    def __init__(self, status: int = 200) -> None:
        self.opened: list[Upstream] = []
        self._status = status

    async def open(self) -> ReplyStream:
        await asyncio.sleep(0.01)
        upstream = Upstream(self._status)
        self.opened.append(upstream)
        return upstream


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def take(stream: ReplyStream, frames: int) -> bytes:
    """What the client has received once ``frames`` frames have arrived."""
    got = b""
    async for chunk in stream.chunks():
        got += chunk
        if got.count(b"\r\n\r\n") >= frames:
            return got
    return got


def test_frames_are_split_at_their_blank_line_whatever_the_chunks() -> None:
    buffer = bytearray()
    stream = event(1) + PING + b"id: 2\nevent: x\ndata: {}\n\n" + event(3)
    frames = [
        frame for i in range(0, len(stream), 7) for frame in sse_frames(buffer, stream[i : i + 7])
    ]

    assert frames == [event(1), PING, b"id: 2\nevent: x\ndata: {}\n\n", event(3)]
    assert buffer == b""
    assert [frame_seq(f) for f in frames] == [1, None, 2, 3]
    assert frame_seq(b"event: x\r\nid: 12\r\ndata: {}\r\n\r\n") == 12


async def test_followers_of_a_task_share_one_notifier_stream_and_get_every_frame() -> None:
    notifier, shared = Notifier(), SharedTimelines()

    # fifty clients arrive while the first one's stream is still being opened
    followers = await asyncio.gather(
        *(shared.follow(ACME_TASK, 0, notifier.open) for _ in range(50))
    )
    [upstream] = notifier.opened
    upstream.feed(event(1), PING, event(2)[:9], event(2)[9:])

    got = await asyncio.gather(*(take(f, 3) for f in followers))

    assert set(got) == {event(1) + PING + event(2)}
    assert shared.broadcasts() == 1


async def test_a_client_joining_later_gets_what_it_missed_then_the_live_frames() -> None:
    notifier, shared = Notifier(), SharedTimelines()
    first = await shared.follow(ACME_TASK, 0, notifier.open)
    [upstream] = notifier.opened
    upstream.feed(event(1), PING, event(2), event(3))
    await take(first, 4)

    from_start = await shared.follow(ACME_TASK, 0, notifier.open)
    resuming = await shared.follow(ACME_TASK, 2, notifier.open)
    ahead = await shared.follow(ACME_TASK, 4, notifier.open)  # resumes after a seq not seen yet
    upstream.feed(event(4), event(5))

    assert await take(from_start, 5) == event(1) + event(2) + event(3) + event(4) + event(5)
    assert await take(resuming, 3) == event(3) + event(4) + event(5)
    assert await take(ahead, 1) == event(5)
    assert len(notifier.opened) == 1


async def test_a_client_from_further_back_than_the_broadcast_gets_its_own_stream() -> None:
    notifier, shared = Notifier(), SharedTimelines()
    await shared.follow(ACME_TASK, 5, notifier.open)

    behind = await shared.follow(ACME_TASK, 2, notifier.open)

    assert len(notifier.opened) == 2
    assert behind is notifier.opened[1]  # the notifier's own stream, relayed as before


async def test_a_broadcast_keeps_only_its_newest_frames_for_late_clients(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(timelines, "HISTORY_BYTES", 3 * len(event(1)))
    notifier, shared = Notifier(), SharedTimelines()
    first = await shared.follow(ACME_TASK, 0, notifier.open)
    notifier.opened[0].feed(*(event(seq) for seq in range(1, 6)))
    await take(first, 5)

    kept = await shared.follow(ACME_TASK, 2, notifier.open)
    assert len(notifier.opened) == 1
    assert await take(kept, 3) == event(3) + event(4) + event(5)

    await shared.follow(ACME_TASK, 1, notifier.open)  # seq 2 is no longer kept
    assert len(notifier.opened) == 2


async def test_what_all_broadcasts_keep_together_stays_within_the_process_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(timelines, "HISTORY_BUDGET_BYTES", 4 * len(event(1)))
    notifier, shared = Notifier(), SharedTimelines()
    other = ("acme", uuid.uuid4())
    first = await shared.follow(ACME_TASK, 0, notifier.open)
    second = await shared.follow(other, 0, notifier.open)
    notifier.opened[0].feed(*(event(seq) for seq in range(1, 4)))
    await take(first, 3)
    notifier.opened[1].feed(*(event(seq) for seq in range(1, 4)))
    await take(second, 3)

    assert shared.kept.bytes == 4 * len(event(1))
    # the broadcast that went over the budget gave up its oldest frames; the other kept all
    assert await take(await shared.follow(ACME_TASK, 0, notifier.open), 3) == b"".join(
        event(seq) for seq in range(1, 4)
    )
    await shared.follow(other, 1, notifier.open)
    assert len(notifier.opened) == 3

    notifier.opened[0].finish()
    await take(first, 99)
    await settle()
    assert shared.kept.bytes == len(event(1))  # what an ended broadcast kept is let go


async def test_a_client_that_stops_reading_is_dropped_and_the_others_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    notifier, shared = Notifier(), SharedTimelines(backlog_frames=3)
    reading = await shared.follow(ACME_TASK, 0, notifier.open)
    stalled = await shared.follow(ACME_TASK, 0, notifier.open)
    [upstream] = notifier.opened

    with caplog.at_level(logging.WARNING, "gateway.timelines"):
        for seq in range(1, 6):
            upstream.feed(event(seq))
            assert (await take(reading, 1)) == event(seq)

    assert stalled.behind  # type: ignore[attr-defined]
    assert await take(stalled, 99) == event(1) + event(2) + event(3)  # then its stream ends
    assert "fell 3 frames behind" in caplog.text
    assert not upstream.closed


async def test_the_notifier_stream_closes_when_the_last_client_leaves() -> None:
    notifier, shared = Notifier(), SharedTimelines()
    one = await shared.follow(ACME_TASK, 0, notifier.open)
    two = await shared.follow(ACME_TASK, 0, notifier.open)
    [upstream] = notifier.opened

    await one.aclose()
    assert not upstream.closed
    await two.aclose()

    assert upstream.closed
    assert shared.broadcasts() == 0
    await shared.follow(ACME_TASK, 0, notifier.open)
    assert len(notifier.opened) == 2


async def test_every_client_stream_ends_with_the_notifiers_and_the_next_opens_anew() -> None:
    notifier, shared = Notifier(), SharedTimelines()
    followers = [await shared.follow(ACME_TASK, 0, notifier.open) for _ in range(3)]
    [upstream] = notifier.opened
    upstream.feed(event(1))
    upstream.finish()

    assert [await take(f, 99) for f in followers] == [event(1)] * 3
    await settle()
    assert upstream.closed
    assert shared.broadcasts() == 0
    await shared.follow(ACME_TASK, 1, notifier.open)
    assert len(notifier.opened) == 2


@pytest.mark.parametrize("status", [204, 404])
async def test_an_answer_other_than_a_stream_is_nobody_elses(status: int) -> None:
    notifier, shared = Notifier(status), SharedTimelines()

    answers = await asyncio.gather(*(shared.follow(ACME_TASK, 0, notifier.open) for _ in range(3)))

    assert [a.status for a in answers] == [status] * 3
    assert answers == notifier.opened  # each its own, for the caller to read and close
    assert shared.broadcasts() == 0


async def test_tenants_never_share_a_broadcast() -> None:
    notifier, shared = Notifier(), SharedTimelines()
    _, task_id = ACME_TASK
    acme = await shared.follow(ACME_TASK, 0, notifier.open)
    globex = await shared.follow(("globex", task_id), 0, notifier.open)

    notifier.opened[0].feed(event(1))

    assert len(notifier.opened) == 2  # globex's stream is its own, which the notifier checks
    assert await take(acme, 1) == event(1)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(take(globex, 1), 0.1)
