"""Tickets in real Redis: only their hash is stored, with the TTL; each works once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from gateway.tickets import RedisTickets, TicketsUnavailable, ticket_hash

pytestmark = pytest.mark.integration


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def env() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


async def test_only_the_hash_is_stored_for_the_ttl(redis: Redis, env: str) -> None:
    ticket = await RedisTickets(redis, env).issue("acme", ttl_seconds=30)
    keys = [key.decode() async for key in redis.scan_iter(f"relay:{env}:*")]
    assert keys == [f"relay:{env}:ws-ticket:{ticket_hash(ticket)}"]
    assert ticket not in keys[0]
    assert await redis.get(keys[0]) == b"acme"
    assert 25 < await redis.ttl(keys[0]) <= 30


async def test_a_ticket_is_redeemed_once_even_when_two_race(redis: Redis, env: str) -> None:
    tickets = RedisTickets(redis, env)
    ticket = await tickets.issue("acme", ttl_seconds=30)
    results = await asyncio.gather(*(tickets.redeem(ticket) for _ in range(10)))
    assert results.count("acme") == 1
    assert results.count(None) == 9
    assert await tickets.redeem(ticket) is None


async def test_an_expired_ticket_is_refused(redis: Redis, env: str) -> None:
    tickets = RedisTickets(redis, env)
    ticket = await tickets.issue("acme", ttl_seconds=1)
    await asyncio.sleep(1.5)
    assert await tickets.redeem(ticket) is None


async def test_another_deployments_ticket_is_unknown(redis: Redis, env: str) -> None:
    ticket = await RedisTickets(redis, env).issue("acme", ttl_seconds=30)
    assert await RedisTickets(redis, env + "x").redeem(ticket) is None


async def test_without_redis_both_say_unavailable() -> None:
    gone = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    tickets = RedisTickets(gone, "t")
    with pytest.raises(TicketsUnavailable):
        await tickets.issue("acme", ttl_seconds=30)
    with pytest.raises(TicketsUnavailable):
        await tickets.redeem("rlt_" + "a" * 43)
    await gone.aclose()
