"""The GCRA buckets in real Redis: atomic under concurrency, refilled by time, shared by
gateway replicas, all or nothing across a request's buckets; Redis away is LimiterUnavailable."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from gateway.rate_limiter import RedisRateLimiter, limiter_redis
from gateway.rate_limits import Bucket, Limit, LimiterUnavailable

pytestmark = pytest.mark.integration


TIMEOUT = 2.0  # the gateway's is shorter; a loaded test machine needs more


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = limiter_redis(redis_url, timeout_seconds=TIMEOUT)
    yield client
    await client.aclose()


@pytest.fixture
def env() -> str:
    """A key prefix of the test's own."""
    return f"t{uuid.uuid4().hex[:10]}"


def _bucket(per_second: float, burst: int, name: str = "requests") -> Bucket:
    return Bucket("acme", Limit(name, per_second, burst))


async def test_exactly_the_burst_passes_when_many_race(redis: Redis, env: str) -> None:
    limiter = RedisRateLimiter(redis, env)
    # a slow refill, so no token comes back while the 200 calls run, even on a loaded machine
    bucket = _bucket(0.01, 50)

    verdicts = await asyncio.gather(*(limiter.acquire([bucket]) for _ in range(200)))

    assert sum(v.allowed for (v,) in verdicts) == 50
    refused = [v for (v,) in verdicts if not v.allowed]
    assert all(v.remaining == 0 and v.retry_after_seconds > 0 for v in refused)


async def test_two_replicas_share_one_bucket(redis_url: str, env: str) -> None:
    first = limiter_redis(redis_url, timeout_seconds=TIMEOUT)
    second = limiter_redis(redis_url, timeout_seconds=TIMEOUT)
    try:
        replicas = [RedisRateLimiter(first, env), RedisRateLimiter(second, env)]
        bucket = _bucket(0.01, 10)
        verdicts = await asyncio.gather(*(replicas[i % 2].acquire([bucket]) for i in range(30)))
    finally:
        await first.aclose()
        await second.aclose()
    assert sum(v.allowed for (v,) in verdicts) == 10


async def test_a_spent_bucket_refills_with_time(redis: Redis, env: str) -> None:
    limiter = RedisRateLimiter(redis, env)
    bucket = _bucket(2, 2)  # one token every 0.5 s
    assert [(await limiter.acquire([bucket]))[0].allowed for _ in range(2)] == [True, True]
    (refused,) = await limiter.acquire([bucket])
    if refused.allowed:
        pytest.skip("the machine took over half a second between two calls")
    assert 0 < refused.retry_after_seconds <= 0.5
    assert refused.reset_seconds <= 1.0

    await asyncio.sleep(refused.retry_after_seconds + 0.1)

    (again,) = await limiter.acquire([bucket])
    assert again.allowed


async def test_remaining_and_reset_count_down(redis: Redis, env: str) -> None:
    limiter = RedisRateLimiter(redis, env)
    bucket = _bucket(0.01, 5)  # 100 s per token: nothing refills during the test
    (first,) = await limiter.acquire([bucket])
    (second,) = await limiter.acquire([bucket])
    assert (first.remaining, second.remaining) == (4, 3)
    assert 99 < first.reset_seconds <= 100
    assert 199 < second.reset_seconds <= 200


async def test_a_request_takes_from_all_its_buckets_or_from_none(redis: Redis, env: str) -> None:
    limiter = RedisRateLimiter(redis, env)
    requests, submits = _bucket(0.01, 10), _bucket(0.01, 1, "submits")

    first = await limiter.acquire([requests, submits])
    second = await limiter.acquire([requests, submits])
    (after,) = await limiter.acquire([requests])

    assert [v.allowed for v in first] == [True, True]
    assert [v.allowed for v in second] == [True, False]  # the submit bucket is empty...
    assert second[0].remaining == 9  # ...so the request bucket gave nothing either
    assert after.remaining == 8


async def test_keys_are_scoped_and_expire_once_full(redis: Redis, env: str) -> None:
    limiter = RedisRateLimiter(redis, env)
    await limiter.acquire([_bucket(1, 5)])

    keys = [key.decode() async for key in redis.scan_iter(f"relay:{env}:*")]

    assert keys == [f"relay:{env}:rate-limit:{{acme}}:requests"]
    assert 0 < await redis.pttl(keys[0]) <= 1000


async def test_the_script_is_loaded_again_after_a_flush(redis: Redis, env: str) -> None:
    limiter = RedisRateLimiter(redis, env)
    await limiter.acquire([_bucket(1, 5)])
    await redis.script_flush()

    (verdict,) = await limiter.acquire([_bucket(1, 5)])  # NOSCRIPT, then EVAL

    assert verdict.allowed
    assert verdict.remaining == 3


async def test_redis_away_is_limiter_unavailable(env: str) -> None:
    # nothing listens on port 1; the timeouts are the gateway's kind: short
    redis = limiter_redis("redis://127.0.0.1:1/0", timeout_seconds=0.25)
    try:
        with pytest.raises(LimiterUnavailable):
            await RedisRateLimiter(redis, env).acquire([_bucket(1, 5)])
    finally:
        await redis.aclose()
