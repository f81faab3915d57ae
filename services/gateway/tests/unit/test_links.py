"""One notifier subscription per followed task (and per tenant's ``*``) and gateway, shared by
every WebSocket client following it (links.py)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable

import pytest

from gateway.links import Follower, SharedLive
from gateway.timelines import KeptBytes
from relay_shared.sockets import ALL_TASKS, control, error

from .fakes import FakeChannel

pytestmark = pytest.mark.timeout(10)

TASK, OTHER = uuid.uuid4(), uuid.uuid4()


def event(task: uuid.UUID, seq: int) -> str:
    return json.dumps({"type": "task.progressed", "seq": seq, "task_id": str(task), "data": {}})


class Notifier:
    """Opens a ``FakeChannel`` per connection (after a round trip) and says ``subscribed`` to
    every subscribe unless told otherwise."""

    def __init__(self) -> None:
        self.channels: list[FakeChannel] = []
        self.reachable = True

    async def connect(self) -> FakeChannel:
        await asyncio.sleep(0.01)
        if not self.reachable:
            raise ConnectionError("no notifier")
        channel = FakeChannel("acme")
        self.channels.append(channel)
        return channel

    def subscribes(self, channel: FakeChannel) -> list[dict[str, object]]:
        frames = [json.loads(text) for text in channel.sent]
        return [f for f in frames if f["type"] == "subscribe"]


async def until(condition: Callable[[], bool]) -> None:
    """Until ``condition`` holds (it reads the fakes, which have no event to wait on)."""
    while not condition():  # noqa: ASYNC110
        await asyncio.sleep(0.001)


async def opened(
    notifier: Notifier, follow: Awaitable[Follower | str], *, answer: str = ""
) -> Follower | str:
    """Follow, answering the subscribe it sends (if it sends one) on its connection."""
    before = {id(c): len(c.sent) for c in notifier.channels}

    def sent_to() -> FakeChannel | None:
        grown = [c for c in notifier.channels if len(c.sent) > before.get(id(c), 0)]
        return grown[0] if grown else None

    pending = asyncio.ensure_future(follow)
    await until(lambda: pending.done() or sent_to() is not None)
    if (channel := sent_to()) is not None:
        frame = json.loads(channel.sent[-1])
        channel.frame(answer or control("subscribed", frame["task_id"]))
    return await pending


async def waiting(follower: Follower) -> list[str]:
    """What has reached the follower (at least one frame)."""
    batch = await asyncio.wait_for(anext(follower.batches()), 1)
    return [frame.text for frame in batch]


def shared_live(**options: int) -> SharedLive:
    return SharedLive(kept=KeptBytes(), capacity=options.pop("capacity", 100), **options)


async def test_clients_following_one_task_share_one_subscription_and_get_every_frame() -> None:
    notifier, live = Notifier(), shared_live()

    # fifty clients arrive while the first one's subscription is being opened
    first = asyncio.ensure_future(live.follow("acme", TASK, 0, notifier.connect))
    others = [
        asyncio.ensure_future(live.follow("acme", TASK, 0, notifier.connect)) for _ in range(49)
    ]
    await opened(notifier, first)
    followers = [first.result(), *await asyncio.gather(*others)]
    [channel] = notifier.channels
    channel.frame(event(TASK, 1))
    channel.frame(event(TASK, 2))

    got = [await waiting(f) for f in followers if isinstance(f, Follower)]

    assert len(got) == 50
    assert all(frames == [event(TASK, 1), event(TASK, 2)] for frames in got)
    assert notifier.subscribes(channel) == [{"type": "subscribe", "task_id": str(TASK)}]
    assert live.broadcasts() == 1


async def test_a_later_client_gets_the_kept_frames_after_its_point_one_further_back_its_own() -> (
    None
):
    notifier, live = Notifier(), shared_live()
    first = await opened(notifier, live.follow("acme", TASK, 5, notifier.connect))
    assert isinstance(first, Follower)
    [channel] = notifier.channels
    for seq in (6, 7, 8):
        channel.frame(event(TASK, seq))
    await until(lambda: len(first._waiting) == 3)

    resuming = await live.follow("acme", TASK, 6, notifier.connect)
    assert isinstance(resuming, Follower)
    assert await waiting(resuming) == [event(TASK, 7), event(TASK, 8)]
    # from before the broadcast's first frame: a subscription of its own, on its own connection
    behind = await opened(notifier, live.follow("acme", TASK, 2, notifier.connect))
    assert isinstance(behind, Follower)
    assert len(notifier.channels) == 2
    assert notifier.subscribes(notifier.channels[1]) == [
        {"type": "subscribe", "task_id": str(TASK), "after": 2}
    ]
    notifier.channels[1].frame(event(TASK, 3))
    channel.frame(event(TASK, 9))
    assert await waiting(behind) == [event(TASK, 3)]
    assert await waiting(resuming) == [event(TASK, 9)]


async def test_a_tenants_tasks_ride_one_connection_star_and_other_tenants_have_their_own() -> None:
    notifier, live = Notifier(), shared_live(capacity=2)
    for task in (TASK, OTHER):
        await opened(notifier, live.follow("acme", task, 0, notifier.connect))
    star = await opened(notifier, live.follow("acme", ALL_TASKS, 0, notifier.connect))
    third = uuid.uuid4()
    await opened(notifier, live.follow("acme", third, 0, notifier.connect))  # past capacity
    await opened(notifier, live.follow("globex", TASK, 0, notifier.connect))

    subscribed = [[f["task_id"] for f in notifier.subscribes(c)] for c in notifier.channels]
    assert subscribed == [[str(TASK), str(OTHER)], ["*"], [str(third)], [str(TASK)]]
    # an event on the star connection reaches `*`, whichever task it is of
    assert isinstance(star, Follower)
    notifier.channels[1].frame(event(TASK, 4))
    assert await waiting(star) == [event(TASK, 4)]


async def test_the_last_follower_to_leave_unsubscribes_and_an_idle_connection_closes() -> None:
    notifier, live = Notifier(), shared_live()
    a = await opened(notifier, live.follow("acme", TASK, 0, notifier.connect))
    b = await live.follow("acme", TASK, 0, notifier.connect)
    other = await opened(notifier, live.follow("acme", OTHER, 0, notifier.connect))
    assert isinstance(a, Follower)
    assert isinstance(b, Follower)
    assert isinstance(other, Follower)
    [channel] = notifier.channels

    await a.broadcast.leave(a)
    assert len(channel.sent) == 2  # b still follows
    await b.broadcast.leave(b)
    assert json.loads(channel.sent[-1]) == {"type": "unsubscribe", "task_id": str(TASK)}
    channel.frame(event(TASK, 1))  # sent before the notifier read the unsubscribe: dropped
    channel.frame(control("unsubscribed", TASK))
    await other.broadcast.leave(other)

    assert channel.closed
    assert live.broadcasts() == 0
    # following again opens a new connection
    await opened(notifier, live.follow("acme", TASK, 0, notifier.connect))
    assert len(notifier.channels) == 2


async def test_end_is_every_followers_last_frame_and_the_idle_connection_closes() -> None:
    notifier, live = Notifier(), shared_live()
    followers = [await opened(notifier, live.follow("acme", TASK, 0, notifier.connect))]
    followers.append(await live.follow("acme", TASK, 0, notifier.connect))
    [channel] = notifier.channels
    channel.frame(event(TASK, 1))
    channel.frame(control("end", TASK))

    for follower in followers:
        assert isinstance(follower, Follower)
        assert [t async for batch in follower.batches() for t in (f.text for f in batch)] == [
            event(TASK, 1),
            control("end", TASK),
        ]
        assert follower.close_code is None
    await until(lambda: channel.closed)
    assert live.broadcasts() == 0


async def test_a_refusal_reaches_every_client_waiting_for_the_subscription() -> None:
    notifier, live = Notifier(), shared_live()
    refusal = error(503, "Service Unavailable", "Cannot read the timeline right now.", TASK)
    first = asyncio.ensure_future(live.follow("acme", TASK, 0, notifier.connect))
    second = asyncio.ensure_future(live.follow("acme", TASK, 0, notifier.connect))

    assert await opened(notifier, first, answer=refusal) == refusal
    assert await second == refusal
    assert live.broadcasts() == 0


async def test_an_unreachable_notifier_refuses_the_subscription_with_503() -> None:
    notifier, live = Notifier(), shared_live()
    notifier.reachable = False

    refusal = await live.follow("acme", TASK, 0, notifier.connect)

    assert isinstance(refusal, str)
    assert json.loads(refusal) | {"detail": ""} == {
        "type": "error",
        "task_id": str(TASK),
        "status": 503,
        "title": "Service Unavailable",
        "detail": "",
    }
    assert live.broadcasts() == 0


@pytest.mark.parametrize(
    ("notifier_code", "client_code"), [(1012, 1012), (1006, 1012), (1013, 1013)]
)
async def test_when_the_connection_ends_its_clients_are_closed(
    notifier_code: int, client_code: int
) -> None:
    notifier, live = Notifier(), shared_live()
    follower = await opened(notifier, live.follow("acme", TASK, 0, notifier.connect))
    star = await opened(notifier, live.follow("acme", ALL_TASKS, 0, notifier.connect))
    assert isinstance(follower, Follower)
    assert isinstance(star, Follower)

    notifier.channels[0].end(code=notifier_code)

    assert [f async for f in follower.batches()] == []
    assert follower.close_code == client_code
    assert not star.broadcast.ended  # on a connection of its own
    assert live.broadcasts() == 1


async def test_a_client_far_behind_is_dropped_1013_while_the_others_keep_receiving() -> None:
    notifier, live = Notifier(), shared_live(backlog_frames=3)
    slow = await opened(notifier, live.follow("acme", TASK, 0, notifier.connect))
    reading = await live.follow("acme", TASK, 0, notifier.connect)
    assert isinstance(slow, Follower)
    assert isinstance(reading, Follower)
    [channel] = notifier.channels

    got: list[str] = []
    for seq in range(1, 6):
        channel.frame(event(TASK, seq))
        got += await waiting(reading)

    assert got == [event(TASK, seq) for seq in range(1, 6)]
    assert [len(batch) async for batch in slow.batches()] == [3]
    assert slow.close_code == 1013
    assert not reading.broadcast.ended


async def test_kept_frames_count_against_the_process_budget_and_are_released() -> None:
    notifier, live = Notifier(), shared_live()
    follower = await opened(notifier, live.follow("acme", TASK, 0, notifier.connect))
    assert isinstance(follower, Follower)
    channel = notifier.channels[0]
    channel.frame(event(TASK, 1))
    await waiting(follower)
    kept = live._kept.bytes
    assert kept == len(event(TASK, 1))

    await follower.broadcast.leave(follower)

    assert live._kept.bytes == 0


async def test_a_client_that_goes_while_the_subscription_opens_leaves_it_to_the_others() -> None:
    notifier, live = Notifier(), shared_live()
    going = asyncio.ensure_future(live.follow("acme", TASK, 0, notifier.connect))
    staying = asyncio.ensure_future(live.follow("acme", TASK, 0, notifier.connect))
    await until(lambda: bool(notifier.channels and notifier.channels[0].sent))
    going.cancel()
    await asyncio.wait([going])

    [channel] = notifier.channels
    channel.frame(control("subscribed", TASK))
    follower = await staying
    assert isinstance(follower, Follower)
    channel.frame(event(TASK, 1))
    assert await waiting(follower) == [event(TASK, 1)]
    await follower.broadcast.leave(follower)
    assert channel.closed


async def test_when_every_client_goes_while_it_opens_nothing_stays_subscribed() -> None:
    notifier, live = Notifier(), shared_live()
    going = asyncio.ensure_future(live.follow("acme", TASK, 0, notifier.connect))
    await asyncio.sleep(0)  # connecting
    going.cancel()
    await asyncio.wait([going])

    await until(lambda: bool(notifier.channels) and notifier.channels[0].closed)
    assert notifier.channels[0].sent == []
    assert live.broadcasts() == 0


async def test_subscriptions_to_many_tasks_at_once_wait_for_one_connection() -> None:
    notifier, live = Notifier(), shared_live()
    tasks = [uuid.uuid4() for _ in range(20)]
    pending = [asyncio.ensure_future(live.follow("acme", t, 0, notifier.connect)) for t in tasks]
    await until(lambda: bool(notifier.channels) and len(notifier.channels[0].sent) == 20)
    [channel] = notifier.channels
    for task in tasks:
        channel.frame(control("subscribed", task))

    followers = await asyncio.gather(*pending)

    assert all(isinstance(f, Follower) for f in followers)
    assert {f["task_id"] for f in notifier.subscribes(channel)} == {str(t) for t in tasks}
