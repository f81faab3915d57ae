"""RedisLiveFeed against real Redis: one subscriber connection per process, shared, healed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from notifier.live import RedisLiveFeed, RedisTimelinePublisher, tenant_channel, timeline_channel
from notifier.models import TimelineEvent
from relay_devkit.testing import eventually

pytestmark = pytest.mark.integration


@dataclass
class Running:
    feed: RedisLiveFeed
    publisher: RedisTimelinePublisher
    admin: Redis
    env: str
    name: str

    async def pubsub_connections(self) -> list[dict[str, object]]:
        clients = await self.admin.client_list(_type="pubsub")
        return [c for c in clients if c.get("name") == self.name]

    async def subscribers(self, task_id: uuid.UUID) -> int:
        counts = await self.admin.pubsub_numsub(timeline_channel(self.env, task_id))
        return int(counts[0][1])


@pytest.fixture
async def running(redis_url: str) -> AsyncIterator[Running]:
    env, name = f"t{uuid.uuid4().hex[:10]}", f"notifier-test-{uuid.uuid4().hex[:8]}"
    redis = Redis.from_url(redis_url, client_name=name)
    admin = Redis.from_url(redis_url, decode_responses=True)
    feed = RedisLiveFeed(redis, env, poll_seconds=0.2)
    loop = asyncio.create_task(feed.run())
    try:
        yield Running(feed, RedisTimelinePublisher(redis, env), admin, env, name)
    finally:
        feed.stop()
        await loop
        await redis.aclose()
        await admin.aclose()


def _event(task_id: uuid.UUID, seq: int, tenant: str = "acme") -> TimelineEvent:
    return TimelineEvent(
        type="task.progressed",
        seq=seq,
        task_id=task_id,
        occurred_at=datetime.now(UTC),
        data={"step": seq},
        event_id=uuid.uuid4(),
        tenant_id=tenant,
    )


async def test_local_listeners_share_one_subscriber_connection(running: Running) -> None:
    task_a, task_b = uuid.uuid4(), uuid.uuid4()
    feed = running.feed
    async with feed.listen(task_a) as first, feed.listen(task_a) as second, feed.listen(task_b):
        assert len(await running.pubsub_connections()) == 1
        assert await running.subscribers(task_a) == 1  # two local listeners, one subscription
        assert await running.subscribers(task_b) == 1
        sent = _event(task_a, 1)
        await running.publisher.publish([sent])
        assert await first.next(within=5) == sent
        assert await second.next(within=5) == sent
        assert sent.tenant_id == "acme"  # the tenant travels with the live message


async def test_a_channel_is_unsubscribed_when_its_last_listener_leaves(running: Running) -> None:
    task_a, task_b = uuid.uuid4(), uuid.uuid4()
    feed = running.feed
    async with feed.listen(task_b):
        async with feed.listen(task_a):
            async with feed.listen(task_a):
                pass
            assert await running.subscribers(task_a) == 1  # one listener is still there

        async def subscriptions() -> tuple[int, int]:
            return await running.subscribers(task_a), await running.subscribers(task_b)

        await eventually(subscriptions, until=lambda counts: counts == (0, 1), within=5)
        assert feed.listening(task_a) == 0


async def test_a_dropped_connection_is_resubscribed_and_listeners_told_to_reread(
    running: Running,
) -> None:
    task_id = uuid.uuid4()
    async with running.feed.listen(task_id) as listener:
        [connection] = await running.pubsub_connections()
        await running.admin.client_kill_filter(_id=connection["id"])

        async def resubscribed() -> list[dict[str, object]]:
            return [c for c in await running.pubsub_connections() if c["id"] != connection["id"]]

        await eventually(resubscribed, within=10)
        # anything published while it was down is gone: the listener is asked to re-read
        assert await listener.next(within=5) is None
        sent = _event(task_id, 7)

        async def delivered() -> TimelineEvent | None:
            await running.publisher.publish([sent])
            return await listener.next(within=0.5)

        assert await eventually(delivered, within=10) == sent


async def test_each_event_also_reaches_its_tenants_channel(running: Running) -> None:
    task_a, task_b, theirs = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    feed = running.feed
    async with feed.listen_tenant("acme") as acme, feed.listen(task_a) as only_a:
        assert int((await running.admin.pubsub_numsub(tenant_channel(running.env, "acme")))[0][1])
        await running.publisher.publish(
            [_event(task_a, 1), _event(theirs, 1, tenant="globex"), _event(task_b, 1)]
        )
        seen = [await acme.next(within=2) for _ in range(2)]
        assert [(e.task_id, e.seq) for e in seen if e is not None] == [(task_a, 1), (task_b, 1)]
        assert await acme.next(within=0.3) is None  # globex's event went to globex's channel
        first = await only_a.next(within=2)
        assert first is not None
        assert first.task_id == task_a
        assert await only_a.next(within=0.3) is None
