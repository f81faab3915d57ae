"""Background loops beside a service's HTTP server: the ``Loop`` shape (run until stopped),
``Periodic`` for "every N seconds until stopped", and ``background`` to run a set of them with a
graceful stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Protocol, runtime_checkable

import psycopg

log = logging.getLogger(__name__)

STOP_ALLOWANCE_SECONDS = 5.0


class Loop(Protocol):
    async def run(self) -> None: ...

    def stop(self) -> None: ...


@runtime_checkable
class Drains(Protocol):
    """A loop whose stop ends with a tail the next loop need not wait for (a consumer handing
    back what its abandoned long poll still returns): ``drained`` returns once its stop has done
    the part that matters to the order, while ``run`` may still be finishing the tail."""

    async def drained(self) -> None: ...


class Periodic:
    """``work()`` every ``interval_seconds`` (the first round at once) until stopped.

    A failed round never ends the loop: an outage (PostgreSQL or the network away) is one
    warning line, anything else is logged with its traceback; the next round tries again."""

    def __init__(
        self, name: str, work: Callable[[], Awaitable[object]], *, interval_seconds: float
    ) -> None:
        self.name = name
        self.rounds = 0  # finished rounds, failed or not (tests wait for some)
        self._work = work
        self._interval = interval_seconds
        self._stopping = asyncio.Event()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._work()
            except (psycopg.Error, OSError) as exc:
                log.warning("%s: %s; next round in %.0fs", self.name, exc, self._interval)
            except Exception:
                log.exception("%s failed; next round in %.0fs", self.name, self._interval)
            self.rounds += 1
            await self.sleep(self._interval)

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less if the loop is stopped meanwhile."""
        await sleep_until_stopped(self._stopping, seconds)


async def sleep_until_stopped(stopping: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less if ``stopping`` is set meanwhile: how a loop waits between
    rounds or retries without delaying its stop."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), timeout=seconds)


@asynccontextmanager
async def background(loops: Sequence[Loop], *, grace_seconds: float = 30.0) -> AsyncIterator[None]:
    """Run ``loops`` while the body runs; on exit stop them one at a time, in the order given.

    Pass consumers before the outbox relay: a consumer stops taking messages and finishes what it
    holds within the grace period, and only then is the relay stopped, so the events that work
    committed are published before the process exits. The next loop is stopped once the one
    before has drained (``Drains``; else once its ``run`` has returned); the tails of their
    stops then run together, and the exit waits for every ``run`` to return.

    A loop that dies on its own takes the process down (SIGTERM to itself), so the supervisor
    or the container runtime restarts it rather than leaving a service that answers /healthz
    but no longer works.
    """
    tasks = [asyncio.create_task(loop.run(), name=type(loop).__name__) for loop in loops]
    stopping = False

    def on_done(task: asyncio.Task[None]) -> None:
        if stopping or task.cancelled():
            return
        error = task.exception()
        log.critical(
            "background loop %s ended unexpectedly: %r", task.get_name(), error, exc_info=error
        )
        os.kill(os.getpid(), signal.SIGTERM)

    for task in tasks:
        task.add_done_callback(on_done)
    try:
        yield
    finally:
        stopping = True
        # a loop's own grace period is grace_seconds; the allowance covers its cleanup after it
        deadline = asyncio.get_running_loop().time() + grace_seconds + STOP_ALLOWANCE_SECONDS
        for loop, task in zip(loops, tasks, strict=True):
            loop.stop()
            remaining = max(0.0, deadline - asyncio.get_running_loop().time())
            with contextlib.suppress(TimeoutError, Exception):
                await asyncio.wait_for(_drained(loop, task), timeout=remaining)
        remaining = max(0.0, deadline - asyncio.get_running_loop().time())
        if remaining > 0 and tasks:  # asyncio.wait refuses an empty set
            await asyncio.wait(tasks, timeout=remaining)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _drained(loop: Loop, task: asyncio.Task[None]) -> None:
    """Until ``loop``'s stop has drained what matters to the next loop, or its run ended."""
    if not isinstance(loop, Drains):
        await asyncio.shield(task)
        return
    drained = asyncio.ensure_future(loop.drained())
    try:
        await asyncio.wait({task, drained}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        drained.cancel()
        await asyncio.gather(drained, return_exceptions=True)
