"""The one backoff every retry loop of the kit and the services waits with, on tenacity's wait
strategies: exponential from ``initial`` to ``maximum``, each delay jittered down to half, so
that replicas that failed together do not retry in step."""

from __future__ import annotations

from tenacity import RetryCallState, wait_exponential, wait_random_exponential
from tenacity.wait import wait_base


def equal_jitter(*, initial: float, maximum: float) -> wait_base:
    """Half the exponential delay, plus up to the other half at random."""
    return wait_exponential(multiplier=initial / 2, max=maximum / 2) + wait_random_exponential(
        multiplier=initial / 2, max=maximum / 2
    )


class Backoff:
    """``delay(failures)`` for loops that count their own failures (a relay, a listener, a
    start-up step) rather than retrying one call."""

    def __init__(self, *, initial: float = 0.5, maximum: float = 30.0, jitter: bool = True) -> None:
        """``jitter=False``: the plain doubling, for a delay that must be predictable (how long
        a failed message stays invisible)."""
        self.initial = initial
        self.maximum = maximum
        self.wait: wait_base = (
            equal_jitter(initial=initial, maximum=maximum)
            if jitter
            else wait_exponential(multiplier=initial, max=maximum)
        )

    def delay(self, failures: int) -> float:
        """The wait after ``failures`` failures in a row (the first failure waits ``initial``
        or less)."""
        state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = max(1, failures)
        return float(self.wait(state))
