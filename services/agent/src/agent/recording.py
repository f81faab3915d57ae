"""What an attempt commits: each finished step and how the attempt ended, as the run's new state
together with its events, in one transaction.

Every write is guarded by the attempt number, so an attempt that lost the run (a newer attempt
took it over, or it finished) emits nothing more: it raises ``AttemptSuperseded`` instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from agent.attempts import Attempt, clip, progress_message
from agent.budgets import BudgetExceeded
from agent.checkpoints import Checkpoint
from agent.models import RunFlags, RunStatus
from agent.ports import RunStore
from agent.pricing import report_usd
from agent.providers.base import ModelReply
from relay_shared.events import (
    ArtifactUploaded,
    ArtifactUploadedData,
    DomainEvent,
    TaskCancelled,
    TaskCancelledData,
    TaskFailed,
    TaskFailedData,
    TaskInputRequested,
    TaskInputRequestedData,
    TaskProgressed,
    TaskProgressedData,
    TaskSucceeded,
    TaskSucceededData,
)

log = logging.getLogger(__name__)

# Terminal texts go into one event; keep them far below EventBridge's 256 KiB entry limit.
MAX_SUMMARY_CHARS = 8000
MAX_ERROR_CHARS = 2000


class AttemptSuperseded(Exception):
    """A newer attempt took the run over (or it finished); this one stops, emitting nothing."""


class AttemptRecorder:
    def __init__(self, runs: RunStore) -> None:
        self._runs = runs

    async def step(
        self, attempt: Attempt, reply: ModelReply, uploads: Sequence[ArtifactUploadedData]
    ) -> RunFlags:
        """The step just finished (``attempt.steps``), then the files it wrote."""
        return await self._record(attempt, "running", self._step_events(attempt, reply, uploads))

    async def ask(
        self,
        attempt: Attempt,
        reply: ModelReply,
        uploads: Sequence[ArtifactUploadedData],
        checkpoint: Checkpoint,
        files: Mapping[str, bytes],
        *,
        wait_seconds: float,
    ) -> RunFlags:
        """The step that asked, then task.input_requested, with the run stopped at its question
        (checkpoint and files saved, no lease). A cancel requested meanwhile wins: the step is
        recorded as usual and the returned flags say so; the run does not wait."""
        events = self._step_events(attempt, reply, uploads)
        commit = asyncio.ensure_future(
            self._commit_ask(attempt, events, checkpoint, files, wait_seconds)
        )
        commit.add_done_callback(_retrieve)
        attempt.committing = commit
        flags = await asyncio.shield(commit)
        if attempt.finished:
            log.info("task %s: attempt %d waits for input", attempt.task_id, attempt.number)
        return flags

    async def _commit_ask(
        self,
        attempt: Attempt,
        events: list[DomainEvent],
        checkpoint: Checkpoint,
        files: Mapping[str, bytes],
        wait_seconds: float,
    ) -> RunFlags:
        async with self._runs.transaction() as tx:
            # the save proves the attempt owns the run, and locks it against a cancel request
            flags = await tx.save(attempt.state("running"))
            if flags is None:
                raise AttemptSuperseded
            if not flags.cancel_requested:
                if not await tx.wait(
                    attempt.state("running"), checkpoint, files, seconds=wait_seconds
                ):
                    raise AttemptSuperseded  # pragma: no cover - the save above owns the row
                asked = TaskInputRequestedData(
                    attempt=attempt.number,
                    step=attempt.steps,
                    question_id=checkpoint.question.id,
                    question=checkpoint.question.text,
                    usage=attempt.usage,
                    cost_usd=report_usd(attempt.cost_usd),
                )
                events = [*events, attempt.event(TaskInputRequested, asked)]
            await tx.emit(*events)
        attempt.finished = not flags.cancel_requested
        return flags

    @staticmethod
    def _step_events(
        attempt: Attempt, reply: ModelReply, uploads: Sequence[ArtifactUploadedData]
    ) -> list[DomainEvent]:
        progressed = TaskProgressedData(
            attempt=attempt.number,
            step=attempt.steps,
            message=progress_message(reply),
            usage=attempt.usage,
            cost_usd=report_usd(attempt.cost_usd),
        )
        events: list[DomainEvent] = [attempt.event(TaskProgressed, progressed)]
        events += [attempt.event(ArtifactUploaded, u) for u in uploads]
        return events

    async def succeeded(self, attempt: Attempt, reply: ModelReply) -> None:
        summary = reply.text or f"Completed {attempt.steps} steps."
        data = TaskSucceededData(summary=clip(summary, MAX_SUMMARY_CHARS), **attempt.totals())
        await self._record(attempt, "succeeded", [attempt.event(TaskSucceeded, data)])
        log.info("task %s: attempt %d succeeded", attempt.task_id, attempt.number)

    async def failed(
        self, attempt: Attempt, code: str, message: str, *, budget: str | None = None
    ) -> None:
        data = TaskFailedData(
            code=code, message=clip(message, MAX_ERROR_CHARS), budget=budget, **attempt.totals()
        )
        await self._record(attempt, "failed", [attempt.event(TaskFailed, data)])
        log.info("task %s: attempt %d failed (%s)", attempt.task_id, attempt.number, code)

    async def over_budget(self, attempt: Attempt, exceeded: BudgetExceeded) -> None:
        await self.failed(attempt, "budget_exceeded", exceeded.message, budget=exceeded.budget)

    async def cancelled(self, attempt: Attempt) -> None:
        """The attempt stopped for a cancel request: task.cancelled with the request's reason."""
        async with self._runs.transaction() as tx:
            reason = await tx.cancel_reason(attempt.task_id)
        data = TaskCancelledData(reason=reason, **attempt.totals())
        await self._record(attempt, "cancelled", [attempt.event(TaskCancelled, data)])
        log.info("task %s: attempt %d cancelled", attempt.task_id, attempt.number)

    async def settle(self, attempt: Attempt) -> None:
        """Wait for a commit still in flight: its outcome decides what happens next."""
        if attempt.committing is not None:
            await asyncio.wait([attempt.committing])

    async def _record(
        self, attempt: Attempt, status: RunStatus, events: Sequence[DomainEvent]
    ) -> RunFlags:
        """Commit the run's new state with its events. Shielded from the attempt being stopped:
        a commit interrupted half-way would leave us unsure what the database holds."""
        commit = asyncio.ensure_future(self._commit(attempt, status, events))
        commit.add_done_callback(_retrieve)
        attempt.committing = commit
        return await asyncio.shield(commit)

    async def _commit(
        self, attempt: Attempt, status: RunStatus, events: Sequence[DomainEvent]
    ) -> RunFlags:
        async with self._runs.transaction() as tx:
            flags = await tx.save(attempt.state(status))
            if flags is None:
                raise AttemptSuperseded
            await tx.emit(*events)
        attempt.finished = status != "running"
        return flags


def _retrieve(future: asyncio.Future[Any]) -> None:
    # A shielded commit whose caller was cancelled: its error is nobody's to raise; read it so
    # asyncio does not log it as never retrieved.
    if not future.cancelled():
        future.exception()
