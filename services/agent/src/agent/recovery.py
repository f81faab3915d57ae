"""Recovery: runs whose worker died are run again even when their message is gone.

Normally SQS redelivers the task.submitted of a dead worker's run and the next delivery takes
it over. If that message is lost (the local AWS emulator restarted and lost its queues, a
message moved to the DLQ), the run would stay 'running' forever. A sweep looks for runs whose
lease expired more than a grace period ago and runs each as its next attempt through the normal
claim (atomic; a worker that took the run over meanwhile keeps it), at most
``recovery_concurrency`` at a time per process. ``RecoverySweeper`` sweeps periodically.
"""

from __future__ import annotations

import asyncio
import logging
from uuid import UUID

from agent.models import StaleRun
from agent.ports import RunStore
from agent.runner import AttemptRunner
from agent.settings import AgentSettings
from relay_shared.consumer import Defer
from relay_shared.events import TaskFailed, TaskFailedData
from relay_shared.logs import log_context
from relay_shared.loops import Periodic
from relay_shared.tracing import from_traceparent, tracer

log = logging.getLogger(__name__)


class Recovery:
    def __init__(self, settings: AgentSettings, *, runs: RunStore, runner: AttemptRunner) -> None:
        self._settings = settings
        self._runs = runs
        self._runner = runner
        self._recovering: dict[UUID, asyncio.Task[None]] = {}

    async def sweep(self) -> int:
        """Start recovering stale runs while there is room; returns how many it started."""
        free = self._settings.recovery_concurrency - len(self._recovering)
        if free <= 0:
            return 0
        found = await self._runs.stale(
            grace_seconds=self._settings.recovery_grace_seconds,
            limit=free + len(self._recovering),
        )
        fresh = [run for run in found if run.task_id not in self._recovering][:free]
        for run in fresh:
            self._start(run)
        return len(fresh)

    async def recover(self, run: StaleRun) -> None:
        """Run again a task whose worker died, when no redelivery has come for it: as the next
        attempt of the same task.submitted, under the normal lease rules (a worker that took
        it over in the meantime keeps it). A run that has used up its attempts is failed."""
        if run.attempt >= self._settings.recovery_max_attempts:
            await self._abandon(run)
            return
        log.warning(
            "task %s: attempt %d's worker is gone and no redelivery came; recovering it",
            run.task_id,
            run.attempt,
        )
        submitted = run.submitted_event()
        with (
            tracer().start_as_current_span(
                "recover task",
                context=from_traceparent(submitted.metadata.traceparent),
                attributes={"relay.task_id": str(run.task_id), "relay.attempt": run.attempt + 1},
            ),
            log_context(task_id=str(run.task_id), tenant_id=run.tenant_id),
        ):
            try:
                await self._runner.run(submitted)
            except Defer as held:
                log.info("task %s: not recovered: %s", run.task_id, held.reason)

    async def finish(self, grace_seconds: float) -> None:
        """Like a consumer's shutdown: recoveries in progress get ``grace_seconds``, then are
        interrupted (releasing their leases for the next worker)."""
        tasks = list(self._recovering.values())
        if not tasks:
            return
        await asyncio.wait(tasks, timeout=grace_seconds)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _start(self, run: StaleRun) -> None:
        task = asyncio.create_task(self._recover(run), name=f"recover task {run.task_id}")
        self._recovering[run.task_id] = task
        task.add_done_callback(lambda _: self._recovering.pop(run.task_id, None))

    async def _recover(self, run: StaleRun) -> None:
        try:
            await self.recover(run)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The attempt released its lease; after the grace period the next sweep (or a
            # redelivery) tries again.
            log.warning("task %s: recovery failed (%s: %s)", run.task_id, type(exc).__name__, exc)

    async def _abandon(self, run: StaleRun) -> None:
        cause = run.submitted_event().metadata
        async with self._runs.transaction() as tx:
            state = await tx.abandon(
                run.task_id, grace_seconds=self._settings.recovery_grace_seconds
            )
            if state is None:
                return
            data = TaskFailedData(
                code="attempts_exhausted",
                message=f"The task was started {state.attempt} times and its worker was lost"
                " every time; it is not tried again.",
                attempt=state.attempt,
                steps=state.steps,
                usage=state.usage,
                cost_usd=state.cost_usd,
            )
            await tx.emit(
                TaskFailed.create(
                    data, tenant_id=run.tenant_id, task_id=run.task_id, caused_by=cause
                )
            )
        log.error("task %s: failed after %d lost attempts", run.task_id, state.attempt)


class RecoverySweeper(Periodic):
    """A sweep every ``recovery_interval_seconds`` (``rounds`` counts them); on stop, the
    recoveries in progress get the shutdown grace period."""

    def __init__(self, recovery: Recovery, settings: AgentSettings) -> None:
        super().__init__(
            "recovery sweep", recovery.sweep, interval_seconds=settings.recovery_interval_seconds
        )
        self._recovery = recovery
        self._grace = settings.shutdown_grace_seconds

    async def run(self) -> None:
        try:
            await super().run()
        finally:
            await self._recovery.finish(self._grace)
