"""task.cancel_requested: record the request on the run; whoever runs the task stops it.

Which replica receives the request from the control queue is chance. The request is recorded
on the run and NOTIFYed in the same transaction, so the process running the task hears it on
commit (cancel_listener.py) and stops the attempt; the runner then emits task.cancelled.
"""

from __future__ import annotations

import logging

from agent.ports import RunStore
from agent.running import RunningAttempts
from relay_shared.events import TaskCancelled, TaskCancelledData, TaskCancelRequested

log = logging.getLogger(__name__)


class Cancellation:
    def __init__(self, runs: RunStore, running: RunningAttempts) -> None:
        self._runs = runs
        self._running = running

    async def request(self, requested: TaskCancelRequested) -> None:
        """Record the request; whoever runs the task stops it (NOTIFY, then task.cancelled).
        A task not started yet is recorded as cancelled at once, so it never starts; a run
        whose holder is gone, or that waits for input, is cancelled here and now."""
        meta = requested.metadata
        reason = requested.data.reason
        async with self._runs.transaction() as tx:
            outcome = await tx.request_cancel(meta.task_id, meta.tenant_id, reason)
            if outcome.effect == "before_start":
                data = TaskCancelledData(attempt=0, reason=reason)
            elif outcome.effect in ("orphaned", "waiting") and outcome.run is not None:
                run = outcome.run
                data = TaskCancelledData(
                    attempt=run.attempt,
                    steps=run.steps,
                    usage=run.usage,
                    cost_usd=run.cost_usd,
                    artifact_ids=list(outcome.artifact_ids),
                    reason=reason,
                )
            else:
                data = None
            if data is not None:
                await tx.emit(
                    TaskCancelled.create(
                        data, tenant_id=meta.tenant_id, task_id=meta.task_id, caused_by=meta
                    )
                )
        log.info("task %s: cancel request %s", meta.task_id, outcome.effect)
        if outcome.effect == "signalled":
            self._running.cancel(meta.task_id)  # runs here? no need to wait for the NOTIFY
