"""The ``RateLimiter`` port on Redis: GCRA (the generic cell rate algorithm) in one Lua script.

A bucket is one key, ``relay:{env}:rate-limit:{<tenant>}:<limit>``, holding its theoretical
arrival time (TAT, milliseconds of Redis's clock): when the bucket will be full again. A request
may pass when ``TAT - now <= (burst - 1) * interval`` (``interval`` = 1000 / per_second ms);
passing moves the TAT on by one interval. The key expires when the bucket is full, so an idle
tenant costs nothing. Every bucket a request takes from (the request bucket and, for a submit,
the submit bucket) is checked and updated by one script call: one round trip, atomic across
gateway replicas, all or nothing. The time is Redis's (``TIME``), so replicas' clocks never
disagree. The braces put a tenant's keys in one cluster hash slot. redis-py's ``Script`` sends
EVALSHA and loads the script on NOSCRIPT. ADR 0017 says why not the ``limits`` package.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from gateway.rate_limits import Bucket, LimiterUnavailable, Verdict

# KEYS[i]: a bucket; ARGV[2i-1], ARGV[2i]: its interval (ms) and burst.
# Answers one {allowed, remaining, ms until full, ms until one token is back} per bucket.
GCRA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
local eps = 0.000001
local tats = {}
local every = true
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local stored = redis.call('GET', KEYS[i])
  local tat = now
  if stored then tat = math.max(tonumber(stored), now) end
  tats[i] = tat
  if tat - now > (burst - 1) * interval + eps then every = false end
end
local answer = {}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tat = tats[i]
  local allowed = 1
  local retry = 0
  if tat - now > (burst - 1) * interval + eps then
    allowed = 0
    retry = tat - now - (burst - 1) * interval
  end
  if every then
    tat = tat + interval
    redis.call('SET', KEYS[i], string.format('%.3f', tat), 'PX', math.ceil(tat - now))
  end
  local remaining = math.floor((burst * interval - (tat - now)) / interval + eps)
  answer[i] = {allowed, remaining, math.ceil(tat - now), math.ceil(retry)}
end
return answer
"""


# Concurrent limiter calls per process beyond this wait (up to the timeout) for a connection,
# rather than fail at once as redis-py's default pool does.
MAX_CONNECTIONS = 100


def limiter_redis(url: str, *, timeout_seconds: float) -> Redis:
    """A Redis client for the limiter: short connect and read timeouts, and a pool that waits
    (as long as the timeout) for a free connection. Past the timeout the call fails, and the
    gateway serves the request without limits: a slow Redis must not hold requests."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        socket_timeout=timeout_seconds,
        socket_keepalive=True,
    )
    return Redis.from_pool(pool)  # closing the client closes the pool


class RedisRateLimiter:
    """``RateLimiter`` on Redis; give it a ``limiter_redis`` client."""

    def __init__(self, redis: Redis, env: str) -> None:
        self._script = redis.register_script(GCRA)
        self._prefix = f"relay:{env}:rate-limit:"

    def key(self, bucket: Bucket) -> str:
        return f"{self._prefix}{{{bucket.tenant_id}}}:{bucket.limit.name}"

    async def acquire(self, buckets: Sequence[Bucket]) -> Sequence[Verdict]:
        args: list[float | int] = []
        for bucket in buckets:
            args += [1000.0 / bucket.limit.per_second, bucket.limit.burst]
        try:
            answer = await self._script(keys=[self.key(b) for b in buckets], args=args)
        except (RedisError, OSError) as exc:  # redis' own TimeoutError is a RedisError
            raise LimiterUnavailable(str(exc) or type(exc).__name__) from exc
        return [
            Verdict(
                allowed=bool(allowed),
                remaining=int(remaining),
                reset_seconds=int(reset_ms) / 1000,
                retry_after_seconds=int(retry_ms) / 1000,
            )
            for allowed, remaining, reset_ms, retry_ms in answer
        ]
