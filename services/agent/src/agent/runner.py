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
from typing import NamedTuple

from agent.attempts import Attempt, resumed_attempt
from agent.checkpoints import Resumption
from agent.leases import keep_lease
from agent.models import Claim, Claimed, Finished, Held
from agent.ports import Clock, RunStore, RunTransaction
from agent.recording import AttemptRecorder, AttemptSuperseded
from agent.running import RunningAttempts, StopCause
from agent.settings import AgentSettings
from agent.work import AttemptWork
from relay_shared.consumer import Defer
from relay_shared.events import (
    EventMetadata,
    ResumePoint,
    TaskInputProvided,
    TaskLimits,
    TaskStarted,
    TaskStartedData,
    TaskSubmitted,
    TaskSubmittedData,
)
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


class _Started(NamedTuple):
    attempt: Attempt
    task: TaskSubmittedData
    limits: TaskLimits
    resume: Resumption | None


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
        """Run the task unless it finished, waits for input or another worker holds it (then
        Defer). Raises on anything unexpected, handing the run back (lease released) so the
        redelivered message starts it over as the next attempt (or resumes it, when it had
        waited for input and has its answer)."""
        meta = submitted.metadata
        async with self._runs.transaction() as tx:
            claim = await tx.claim(
                meta.task_id,
                meta.tenant_id,
                worker_id=self._settings.worker_id,
                lease_seconds=self._settings.run_lease_seconds,
                wall_seconds=self._limits_of(submitted.data).max_wall_seconds,
                submitted=submitted.data.model_dump(mode="json"),
                submitted_metadata=meta.model_dump(mode="json"),
            )
            started = await self._started(tx, claim, meta, submitted.data)
        await self._execute(started)

    async def resume(self, provided: TaskInputProvided) -> None:
        """The client answered: go on from the run's saved question as its next attempt, on
        this worker, unless the run no longer waits on it (ended, cancelled, answered and
        resumed by a live worker: then Defer)."""
        meta = provided.metadata
        async with self._runs.transaction() as tx:
            claim = await tx.resume(
                meta.task_id,
                provided.data.question_id,
                provided.data.text,
                worker_id=self._settings.worker_id,
                lease_seconds=self._settings.run_lease_seconds,
                wall_seconds=self._settings.default_max_wall_seconds,
            )
            started = await self._started(tx, claim, meta, None)
        await self._execute(started)

    async def _execute(self, started: _Started | None) -> None:
        if started is None:
            return
        attempt, task, limits, resume = started
        log.info(
            "task %s: attempt %d %s (model %s): %r",
            attempt.task_id,
            attempt.number,
            "started" if resume is None else "resumed after its answer",
            task.model,
            truncate(task.prompt, self._settings.log_prompt_chars),
        )
        work = asyncio.create_task(
            self._work.run(attempt, task, limits, resume),
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

    def _limits_of(self, task: TaskSubmittedData) -> TaskLimits:
        """The task's budgets: as submitted, else the agent's defaults (older events)."""
        if task.limits is not None:
            return task.limits
        s = self._settings
        return TaskLimits(
            max_turns=s.default_max_turns,
            max_output_tokens=s.default_max_output_tokens,
            max_wall_seconds=s.default_max_wall_seconds,
        )

    async def _started(
        self,
        tx: RunTransaction,
        claim: Claim,
        meta: EventMetadata,
        task: TaskSubmittedData | None,
    ) -> _Started | None:
        """What the claim gives: an attempt to run (task.started emitted in its transaction,
        caused by ``meta``'s event), None when the run must not run now, or Defer while
        another attempt holds it."""
        if isinstance(claim, Claimed):
            resume = claim.resume
            if resume is not None:
                task = resume.submitted
            assert task is not None  # a resume claim always brings the run's task
            limits = self._limits_of(task)
            now = self._clock()
            if resume is None:
                attempt = Attempt(
                    meta.task_id,
                    meta.tenant_id,
                    claim.attempt,
                    cause=meta,
                    deadline=now + limits.max_wall_seconds,
                    began=now,
                )
                point = None
            else:
                attempt = resumed_attempt(
                    meta.task_id,
                    meta.tenant_id,
                    claim.attempt,
                    cause=meta,
                    checkpoint=resume.checkpoint,
                    now=now,
                    max_wall_seconds=limits.max_wall_seconds,
                )
                asked = resume.checkpoint
                point = ResumePoint(question_id=asked.question.id, step=asked.step)
            data = TaskStartedData(
                attempt=claim.attempt, worker_id=self._settings.worker_id, resumed=point
            )
            await tx.emit(attempt.event(TaskStarted, data))
            return _Started(attempt, task, limits, resume)
        if isinstance(claim, Finished):
            log.info("task %s is %s; not running it now", meta.task_id, claim.status)
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
