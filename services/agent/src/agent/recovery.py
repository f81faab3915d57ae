"""The recovery sweeper: runs whose worker died are run again even when their message is gone.

Normally SQS redelivers the task.submitted of a dead worker's run and the next delivery takes
it over. If that message is lost (the local AWS emulator restarted and lost its queues, a
message moved to the DLQ), the run would stay 'running' forever. The sweeper looks for runs
whose lease expired more than a grace period ago and runs each as its next attempt through
the normal claim (atomic; a worker that took the run over meanwhile keeps it), at most
``concurrency`` at a time per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from uuid import UUID

from agent.models import StaleRun
from agent.runs import StaleRuns
from agent.service import AgentService

log = logging.getLogger(__name__)


class RecoverySweeper:
    """A background loop (run/stop)."""

    def __init__(
        self,
        runs: StaleRuns,
        service: AgentService,
        *,
        interval_seconds: float,
        grace_seconds: float,
        concurrency: int,
        shutdown_grace_seconds: float = 30.0,
    ) -> None:
        self._runs = runs
        self._service = service
        self._interval = interval_seconds
        self._grace = grace_seconds
        self._concurrency = concurrency
        self._shutdown_grace = shutdown_grace_seconds
        self._stopping = asyncio.Event()
        self._recovering: dict[UUID, asyncio.Task[None]] = {}
        self.sweeps = 0  # finished sweeps (tests wait for some to have happened)

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    await self.sweep()
                except Exception as exc:
                    # PostgreSQL away, most likely: look again next round
                    log.warning("recovery sweep failed: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._interval)
        finally:
            await self._finish_recoveries()

    async def sweep(self) -> int:
        """Start recovering stale runs while there is room; returns how many it started."""
        free = self._concurrency - len(self._recovering)
        started = 0
        if free > 0:
            found = await self._runs.stale(
                grace_seconds=self._grace, limit=free + len(self._recovering)
            )
            for run in found:
                if started == free:
                    break
                if run.task_id not in self._recovering:
                    self._start(run)
                    started += 1
        self.sweeps += 1
        return started

    def _start(self, run: StaleRun) -> None:
        task = asyncio.create_task(self._recover(run), name=f"recover task {run.task_id}")
        self._recovering[run.task_id] = task
        task.add_done_callback(lambda _: self._recovering.pop(run.task_id, None))

    async def _recover(self, run: StaleRun) -> None:
        try:
            await self._service.recover(run)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The attempt released its lease; after the grace period the next sweep (or a
            # redelivery) tries again.
            log.warning("task %s: recovery failed (%s: %s)", run.task_id, type(exc).__name__, exc)

    async def _finish_recoveries(self) -> None:
        """Like a consumer's shutdown: running attempts get the grace period, then are
        interrupted (releasing their leases for the next worker)."""
        tasks = list(self._recovering.values())
        if not tasks:
            return
        await asyncio.wait(tasks, timeout=self._shutdown_grace)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
