"""task.submitted: run the task as this worker's attempt at it, unless it finished or another
worker holds it.

The claim starts the attempt under a lease on its run (task.started goes out with it). The
attempt's work (work.py) runs in its own asyncio task, registered in ``running`` by task id,
while this handler keeps the lease. Stopping the work is cancelling that task; the handler then
emits ``task.cancelled`` for a cancel request, defers the message for a lost lease, or emits
nothing at all when the process is shutting down (the lease is released and the message goes
back to the queue for another worker).
"""

from __future__ import annotations

import asyncio
import logging
import math

from agent.attempts import Attempt
from agent.leases import keep_lease
from agent.models import Claimed, Finished, Held
from agent.ports import Clock, RunStore
from agent.recording import AttemptRecorder, AttemptSuperseded
from agent.running import RunningAttempts, StopCause
from agent.settings import AgentSettings
from agent.work import AttemptWork
from relay_shared.consumer import Defer
from relay_shared.events import TaskLimits, TaskStarted, TaskStartedData, TaskSubmitted
from relay_shared.logs import truncate
from relay_shared.tracing import untraced

log = logging.getLogger(__name__)

# A delivery of a task another worker holds comes back this long after that worker's lease
# and wall-time budget would both have run out.
DEFER_SLACK_SECONDS = 3
# SQS keeps a received message invisible for at most 12 hours.
MAX_DEFER_SECONDS = 11 * 3600
# How long a stopping attempt may take to hand its run back.
RELEASE_TIMEOUT_SECONDS = 5.0


class AttemptRunner:
    def __init__(
        self,
        settings: AgentSettings,
        *,
        runs: RunStore,
        work: AttemptWork,
        recorder: AttemptRecorder,
        running: RunningAttempts,
        clock: Clock,
    ) -> None:
        self._settings = settings
        self._runs = runs
        self._work = work
        self._record = recorder
        self._running = running
        self._clock = clock

    async def run(self, submitted: TaskSubmitted) -> None:
        """Run the task unless it finished or another worker holds it (then Defer). Raises on
        anything unexpected, handing the run back (lease released) so the redelivered message
        starts it over as the next attempt."""
        limits = self._limits_of(submitted)
        attempt = await self._claim(submitted, limits)
        if attempt is None:
            return
        log.info(
            "task %s: attempt %d started (model %s): %r",
            attempt.task_id,
            attempt.number,
            submitted.data.model,
            truncate(submitted.data.prompt, self._settings.log_prompt_chars),
        )
        work = asyncio.create_task(
            self._work.run(attempt, submitted.data, limits),
            name=f"task {attempt.task_id} attempt {attempt.number}",
        )
        with self._running.register(attempt.task_id, attempt.number, work) as running:
            keeper = asyncio.create_task(
                untraced(
                    keep_lease(
                        self._runs,
                        running,
                        owner=self._settings.worker_id,
                        lease_seconds=self._settings.run_lease_seconds,
                    )
                )
            )
            try:
                await work
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if running.stop is None or (current is not None and current.cancelling()):
                    log.info(
                        "task %s: attempt %d interrupted by shutdown; left for redelivery",
                        attempt.task_id,
                        attempt.number,
                    )
                    raise
                await self._stopped(attempt, running.stop)
            except AttemptSuperseded:
                log.warning("task %s: attempt %d was superseded", attempt.task_id, attempt.number)
            finally:
                keeper.cancel()
                await asyncio.gather(keeper, return_exceptions=True)
                await self._record.settle(attempt)
                if not attempt.finished:
                    await self._release(attempt)

    def _limits_of(self, submitted: TaskSubmitted) -> TaskLimits:
        """The task's budgets: as submitted, else the agent's defaults (older events)."""
        if submitted.data.limits is not None:
            return submitted.data.limits
        s = self._settings
        return TaskLimits(
            max_turns=s.default_max_turns,
            max_output_tokens=s.default_max_output_tokens,
            max_wall_seconds=s.default_max_wall_seconds,
        )

    async def _claim(self, submitted: TaskSubmitted, limits: TaskLimits) -> Attempt | None:
        meta = submitted.metadata
        worker = self._settings.worker_id
        async with self._runs.transaction() as tx:
            claim = await tx.claim(
                meta.task_id,
                meta.tenant_id,
                worker_id=worker,
                lease_seconds=self._settings.run_lease_seconds,
                wall_seconds=limits.max_wall_seconds,
                submitted=submitted.data.model_dump(mode="json"),
                submitted_metadata=meta.model_dump(mode="json"),
            )
            if isinstance(claim, Claimed):
                attempt = Attempt(
                    meta.task_id,
                    meta.tenant_id,
                    claim.attempt,
                    cause=meta,
                    deadline=self._clock() + limits.max_wall_seconds,
                )
                started = TaskStartedData(attempt=claim.attempt, worker_id=worker)
                await tx.emit(attempt.event(TaskStarted, started))
                return attempt
        if isinstance(claim, Finished):
            log.info("task %s already %s; not running it again", meta.task_id, claim.status)
            return None
        assert isinstance(claim, Held)
        # Never acknowledged: if the holder dies, this delivery must still be on the queue.
        delay = min(MAX_DEFER_SECONDS, math.ceil(claim.busy_seconds) + DEFER_SLACK_SECONDS)
        raise Defer(delay, f"task {meta.task_id} is being run by another attempt")

    async def _stopped(self, attempt: Attempt, cause: StopCause) -> None:
        await self._record.settle(attempt)
        if cause is StopCause.LEASE_LOST:
            # Another attempt owns the run now; this delivery comes back and finds it held or
            # finished. Acknowledging it could drop the task's last message.
            raise Defer(
                math.ceil(self._settings.run_lease_seconds) + DEFER_SLACK_SECONDS,
                f"task {attempt.task_id}: attempt {attempt.number} lost its lease",
            )
        if attempt.finished:
            log.info("task %s finished before the cancel took effect", attempt.task_id)
            return
        try:
            await self._record.cancelled(attempt)
        except AttemptSuperseded:
            log.info("task %s: attempt %d no longer owns the run", attempt.task_id, attempt.number)

    async def _release(self, attempt: Attempt) -> None:
        try:
            async with asyncio.timeout(RELEASE_TIMEOUT_SECONDS), self._runs.transaction() as tx:
                await tx.release_lease(attempt.task_id, attempt.number, self._settings.worker_id)
        except Exception as exc:  # the lease then simply expires
            log.warning("task %s: could not release the run's lease: %s", attempt.task_id, exc)
