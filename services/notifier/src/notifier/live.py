"""Live fan-out through Redis pub/sub, so any replica can serve any client.

After a commit that appended events, the writer PUBLISHes each one to the task's channel
``relay:{env}:timeline:{task_id}`` and to its tenant's ``relay:{env}:tenant:{tenant_id}`` (for
WebSocket subscriptions to all of a tenant's tasks). Each process keeps ONE subscriber connection
(``RedisLiveFeed``), shared by all its streams: a channel is subscribed when its first local
listener arrives and unsubscribed after the last one leaves. Redis pub/sub is fire-and-forget;
streams cover a lost message by re-reading the timeline (see stream.py), and the feed tells
them to when it has (re)subscribed, since messages published while the connection was down are
gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any
from uuid import UUID

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from notifier.models import TimelineEvent
from notifier.ports import LivePublisher
from relay_shared.backoff import Backoff

log = logging.getLogger(__name__)

# A stream that falls this far behind loses live messages and catches up from the database.
SUBSCRIPTION_BUFFER = 1000


def timeline_channel(env: str, task_id: UUID) -> str:
    return f"relay:{env}:timeline:{task_id}"


def tenant_channel(env: str, tenant_id: str) -> str:
    return f"relay:{env}:tenant:{tenant_id}"


class RedisTimelinePublisher:
    def __init__(self, redis: Redis, env: str) -> None:
        self._redis = redis
        self._env = env

    async def publish(self, events: Sequence[TimelineEvent]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for event in events:
                message = event.live_message()
                pipe.publish(timeline_channel(self._env, event.task_id), message)
                pipe.publish(tenant_channel(self._env, event.tenant_id), message)
            await pipe.execute()


class PublishToAll:
    """Several publishers as one, in order (Redis, then the WebSocket API's senders); each
    failure is the caller's to log, as with one."""

    def __init__(self, *publishers: LivePublisher) -> None:
        self._publishers = publishers

    async def publish(self, events: Sequence[TimelineEvent]) -> None:
        for publisher in self._publishers:
            await publisher.publish(events)


class Subscription:
    """One local listener's view of a channel: live events, or ``None`` meaning "re-read"."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.ready = asyncio.Event()
        self._queue: asyncio.Queue[TimelineEvent | None] = asyncio.Queue(SUBSCRIPTION_BUFFER)

    async def next(self, *, within: float) -> TimelineEvent | None:
        """The next live event; ``None`` when the reader should re-read the timeline instead
        (nothing arrived ``within`` seconds, the feed re-subscribed, or this listener lagged)."""
        try:
            async with asyncio.timeout(within):  # no task per call, as wait_for makes
                return await self._queue.get()
        except TimeoutError:
            return None

    def deliver(self, item: TimelineEvent | None) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            # Drop the backlog and ask for a re-read: the database has all of it, in order.
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(None)


class RedisLiveFeed:
    """The process's single Redis subscriber; a background loop (run/stop) reads it."""

    def __init__(
        self,
        redis: Redis,
        env: str,
        *,
        poll_seconds: float = 1.0,
        ready_timeout: float = 2.0,
    ) -> None:
        self._pubsub = redis.pubsub()
        self._env = env
        self._poll = poll_seconds
        self._ready_timeout = ready_timeout
        self._backoff = Backoff(initial=0.5, maximum=30.0)
        self._listeners: dict[str, set[Subscription]] = {}
        self._confirmed: set[str] = set()  # channels Redis has confirmed and we still want
        self._commands = asyncio.Lock()  # one SUBSCRIBE/UNSUBSCRIBE decision at a time
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    def listening(self, task_id: UUID) -> int:
        """Local listeners of a task's channel (for tests and diagnostics)."""
        return len(self._listeners.get(timeline_channel(self._env, task_id), ()))

    def listen(self, task_id: UUID) -> AbstractAsyncContextManager[Subscription]:
        """Live events of one task."""
        return self._listen(timeline_channel(self._env, task_id))

    def listen_tenant(self, tenant_id: str) -> AbstractAsyncContextManager[Subscription]:
        """Live events of every task of a tenant."""
        return self._listen(tenant_channel(self._env, tenant_id))

    @asynccontextmanager
    async def _listen(self, channel: str) -> AsyncIterator[Subscription]:
        """Subscribe before the caller reads the database, so nothing falls in between.

        Waits (briefly) for Redis to confirm the subscription. If Redis is unreachable the
        subscription still works, fed only by re-reads, and the loop keeps trying to subscribe.
        Leaving is synchronous, so it also runs when the stream is cancelled.
        """
        subscription = Subscription(channel)
        listeners = self._listeners.setdefault(channel, set())
        listeners.add(subscription)
        try:
            if channel in self._confirmed:
                subscription.ready.set()
            else:
                await self._subscribe(channel)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(subscription.ready.wait(), self._ready_timeout)
            yield subscription
        finally:
            listeners.discard(subscription)
            if not listeners and self._listeners.get(channel) is listeners:
                del self._listeners[channel]
                self._wake.set()  # the loop unsubscribes

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        failures = 0
        try:
            while not self._stopping.is_set():
                try:
                    await self._reconcile()
                    if not self._pubsub.subscribed:
                        await self._idle(self._poll)
                        continue
                    message = await self._pubsub.get_message(timeout=self._poll)
                    failures = 0
                except (RedisError, OSError) as exc:
                    failures += 1
                    delay = self._backoff.delay(failures)
                    log.warning("live feed: %s; retrying in %.1fs", exc, delay)
                    self._confirmed.clear()
                    await self._idle(delay)
                    continue
                if message is not None:
                    self._dispatch(message)
        finally:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _subscribe(self, channel: str) -> None:
        async with self._commands:
            try:
                await self._pubsub.subscribe(channel)
            except (RedisError, OSError) as exc:
                log.warning("live feed: cannot subscribe %s yet: %s", channel, exc)
        self._wake.set()  # an idle loop starts reading

    async def _reconcile(self) -> None:
        """Bring Redis subscriptions in line with local listeners (after leaves or failures)."""
        async with self._commands:
            subscribed = {_text(c) for c in self._pubsub.channels} - {
                _text(c) for c in self._pubsub.pending_unsubscribe_channels
            }
            wanted = set(self._listeners)
            if extra := subscribed - wanted:
                self._confirmed.difference_update(extra)
                await self._pubsub.unsubscribe(*extra)
            if missing := wanted - subscribed:
                await self._pubsub.subscribe(*missing)

    async def _idle(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind not in {"message", "subscribe"}:
            return  # unsubscribe confirmations, pongs
        channel = _text(message["channel"])
        listeners = self._listeners.get(channel, set())
        if kind == "message":
            try:
                event = TimelineEvent.from_live_message(message["data"])
            except ValidationError as exc:
                log.warning("live feed: ignoring a malformed message on %s: %s", channel, exc)
                return
            for subscription in listeners:
                subscription.deliver(event)
        elif listeners:
            self._confirmed.add(channel)
            for subscription in listeners:
                if subscription.ready.is_set():
                    subscription.deliver(None)  # re-subscribed: anything may have been missed
                else:
                    subscription.ready.set()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
