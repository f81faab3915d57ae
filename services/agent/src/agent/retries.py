"""Retrying a model call that failed for a passing reason (rate limit, overload, 5xx, dropped
connection, timeout): exponential backoff with full jitter (tenacity's
``wait_random_exponential``), at least what the provider asked for (retry-after), a bounded
number of times, and never past the attempt's wall deadline.

Providers do not retry themselves; this is the one place that does. The wait is tenacity's;
the loop is written out because with tenacity both the wait (retry-after) and the stop (the
deadline, judged against the wait about to happen) would be custom callbacks, and the loop
reads plainer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import RetryCallState, wait_random_exponential

from agent.ports import Clock, Sleep
from agent.providers.base import ProviderError

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int
    base_seconds: float
    max_seconds: float
    sleep: Sleep = asyncio.sleep
    clock: Clock = time.monotonic
    _backoff: wait_random_exponential = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        backoff = wait_random_exponential(multiplier=self.base_seconds, max=self.max_seconds)
        object.__setattr__(self, "_backoff", backoff)

    def delay(self, retry: int, retry_after: float | None) -> float:
        """Wait before retry number ``retry + 1``: anywhere up to ``base * 2**retry`` (capped
        at ``max_seconds``), but never less than the provider's retry-after."""
        state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = retry + 1
        return max(float(self._backoff(state)), retry_after or 0.0)

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
