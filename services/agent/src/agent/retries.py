"""Retrying a model call that failed for a passing reason (rate limit, overload, 5xx, dropped
connection, timeout): exponential backoff with full jitter, at least what the provider asked
for (retry-after), a bounded number of times, and never past the attempt's wall deadline.

Providers do not retry themselves; this is the one place that does. Written out rather than
with tenacity because both the wait (retry-after) and the stop (the deadline, judged against
the wait about to happen) would be custom callbacks, and the loop reads plainer.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from agent.providers.base import ProviderError

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


def _full_jitter(ceiling: float) -> float:
    return random.uniform(0, ceiling)  # noqa: S311 - spreading retries, not security


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int
    base_seconds: float
    max_seconds: float
    sleep: Sleep = asyncio.sleep
    clock: Clock = time.monotonic
    jitter: Callable[[float], float] = field(default=_full_jitter)

    def delay(self, retry: int, retry_after: float | None) -> float:
        """Wait before retry number ``retry + 1``."""
        backoff = self.jitter(min(self.max_seconds, self.base_seconds * 2 ** min(retry, 32)))
        return max(backoff, retry_after or 0.0)

    async def call(self, call: Callable[[], Awaitable[T]], *, deadline: float) -> T:
        """``call()``, retried on retryable ProviderErrors; the last error is raised."""
        retry = 0
        while True:
            try:
                return await call()
            except ProviderError as exc:
                if not exc.retryable or retry >= self.max_retries:
                    raise
                delay = self.delay(retry, exc.retry_after)
                if self.clock() + delay >= deadline:
                    log.warning("%s; no retry: waiting %.1fs would pass the deadline", exc, delay)
                    raise
                retry += 1
                log.warning("%s; retry %d of %d in %.1fs", exc, retry, self.max_retries, delay)
                await self.sleep(delay)
