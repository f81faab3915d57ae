"""Runs that waited for input longer than their task's ``max_wait_seconds`` end ``failed`` with
``input_timeout``: a sweep fails each once (the database picks it, SKIP LOCKED, whichever
replica sweeps), with task.failed in the same transaction."""

from __future__ import annotations

import logging

from agent.models import ExpiredWait
from agent.ports import RunStore
from agent.settings import AgentSettings
from relay_shared.events import EventMetadata, TaskFailed, TaskFailedData
from relay_shared.loops import Periodic

log = logging.getLogger(__name__)

INPUT_TIMEOUT = "input_timeout"
SWEEP_BATCH = 100


class WaitExpiry:
    def __init__(self, runs: RunStore) -> None:
        self._runs = runs

    async def sweep(self) -> int:
        """Fail the runs whose wait ran out; returns how many."""
        async with self._runs.transaction() as tx:
            expired = await tx.expire_waits(limit=SWEEP_BATCH)
            await tx.emit(*(self._failed(wait) for wait in expired))
        for wait in expired:
            log.info("task %s: no answer came in time; failed", wait.run.task_id)
        return len(expired)

    @staticmethod
    def _failed(wait: ExpiredWait) -> TaskFailed:
        run = wait.run
        cause = (
            EventMetadata.model_validate(wait.submitted_metadata)
            if wait.submitted_metadata is not None
            else None
        )
        data = TaskFailedData(
            code=INPUT_TIMEOUT,
            message="The task waited for an answer to its question longer than its"
            " max_wait_seconds allows.",
            attempt=run.attempt,
            steps=run.steps,
            usage=run.usage,
            cost_usd=run.cost_usd,
            artifact_ids=list(wait.artifact_ids),
        )
        return TaskFailed.create(
            data, tenant_id=wait.tenant_id, task_id=run.task_id, caused_by=cause
        )


class WaitExpirySweeper(Periodic):
    def __init__(self, expiry: WaitExpiry, settings: AgentSettings) -> None:
        super().__init__(
            "wait expiry", expiry.sweep, interval_seconds=settings.wait_expiry_interval_seconds
        )
