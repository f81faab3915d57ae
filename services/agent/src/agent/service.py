"""The agent's use cases: run a submitted task as a conversation between a model and the tools,
within its budgets; stop it when a client cancels it.

Provider-agnostic: the model is whatever ModelProvider the composition root chose. Every event
an attempt emits goes to the outbox in the transaction that moves its ``runs`` row, guarded by
the attempt number, so an attempt that lost the run emits nothing more.

An attempt's work runs in its own asyncio task, registered in ``running`` by task id, while the
handler holds the run's lease. Stopping it is cancelling that task; the handler then emits
``task.cancelled`` for a cancel request, or nothing at all when the process is shutting down
(the lease is released and the message goes back to the queue for another worker).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from opentelemetry.trace import Status, StatusCode

from agent.artifacts import StagingArea, stage
from agent.attempts import Attempt, clip, progress_message, wants_tools
from agent.budgets import Budget, BudgetExceeded, wall_time_exceeded
from agent.leases import keep_lease
from agent.models import Claimed, Finished, Held, RunFlags, RunStatus, StaleRun
from agent.pricing import PriceTable, report_usd
from agent.providers.base import ModelProvider, ModelReply, ModelRequest, ProviderError
from agent.retries import Clock, RetryPolicy, Sleep
from agent.running import RunningAttempts, StopCause
from agent.runs import RunStore
from agent.settings import AgentSettings
from agent.telemetry import model_call_span, record_reply, record_tool_outcome, tool_call_span
from agent.tools import TOOLS, Tool, WrittenFile, run_tool
from agent.workspace import Workspace
from relay_shared.consumer import Defer
from relay_shared.events import (
    ArtifactUploaded,
    ArtifactUploadedData,
    DomainEvent,
    TaskCancelled,
    TaskCancelledData,
    TaskCancelRequested,
    TaskFailed,
    TaskFailedData,
    TaskLimits,
    TaskProgressed,
    TaskProgressedData,
    TaskStarted,
    TaskStartedData,
    TaskSubmitted,
    TaskSubmittedData,
    TaskSucceeded,
    TaskSucceededData,
)
from relay_shared.logs import log_context, truncate
from relay_shared.tracing import from_traceparent, tracer, untraced

log = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You are Relay's agent, working on a task for a user. You have a private workspace and tools"
    " to write, read and list files in it. Every file you write with write_file is delivered to"
    " the user as an artifact, so put your results in files. Paths are relative to the"
    " workspace. When the task is done, answer with a short summary of what you did."
)
# Terminal texts go into one event; keep them far below EventBridge's 256 KiB entry limit.
MAX_SUMMARY_CHARS = 8000
MAX_ERROR_CHARS = 2000
# A delivery of a task another worker holds comes back this long after that worker's lease
# and wall-time budget would both have run out.
DEFER_SLACK_SECONDS = 3
# SQS keeps a received message invisible for at most 12 hours.
MAX_DEFER_SECONDS = 11 * 3600
# How long a stopping attempt may take to hand its run back.
RELEASE_TIMEOUT_SECONDS = 5.0


class AttemptSuperseded(Exception):
    """A newer attempt took the run over (or it finished); this one stops, emitting nothing."""


class AgentService:
    def __init__(
        self,
        settings: AgentSettings,
        *,
        runs: RunStore,
        provider: ModelProvider,
        staging: StagingArea,
        running: RunningAttempts | None = None,
        tools: Mapping[str, Tool] = TOOLS,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
    ) -> None:
        self._settings = settings
        self._runs = runs
        self._provider = provider
        self._staging = staging
        self.running = running or RunningAttempts()
        self._tools = tools
        self._tool_specs = [t.spec for t in tools.values()]
        self._prices = PriceTable(settings.model_prices)
        self._clock = clock
        self._retry = RetryPolicy(
            settings.provider_max_retries,
            settings.provider_retry_base_seconds,
            settings.provider_retry_max_seconds,
            sleep=sleep,
            clock=clock,
        )

    # --- task.submitted -----------------------------------------------------------------------

    async def run_task(self, submitted: TaskSubmitted) -> None:
        """Handle task.submitted: run it unless it finished or another worker holds it (then
        Defer). Raises on anything unexpected, handing the run back (lease released) so the
        redelivered message starts it over as the next attempt."""
        limits = self.limits_of(submitted.data)
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
            self._attempt(attempt, submitted.data, limits),
            name=f"task {attempt.task_id} attempt {attempt.number}",
        )
        with self.running.register(attempt.task_id, attempt.number, work) as running:
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
                await self._settle(attempt)
                if not attempt.finished:
                    await self._release(attempt)

    def limits_of(self, task: TaskSubmittedData) -> TaskLimits:
        """The task's budgets: as submitted, else the agent's defaults (older events)."""
        if task.limits is not None:
            return task.limits
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
        await self._settle(attempt)
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
        async with self._runs.transaction() as tx:
            reason = await tx.cancel_reason(attempt.task_id)
        data = TaskCancelledData(reason=reason, **attempt.totals())
        try:
            await self._record(attempt, "cancelled", [attempt.event(TaskCancelled, data)])
        except AttemptSuperseded:
            log.info("task %s: attempt %d no longer owns the run", attempt.task_id, attempt.number)
            return
        log.info("task %s: attempt %d cancelled", attempt.task_id, attempt.number)

    async def _settle(self, attempt: Attempt) -> None:
        """Wait for a commit still in flight: its outcome decides what happens next."""
        if attempt.committing is not None:
            await asyncio.wait([attempt.committing])

    async def _release(self, attempt: Attempt) -> None:
        try:
            async with asyncio.timeout(RELEASE_TIMEOUT_SECONDS), self._runs.transaction() as tx:
                await tx.release_lease(attempt.task_id, attempt.number, self._settings.worker_id)
        except Exception as exc:  # the lease then simply expires
            log.warning("task %s: could not release the run's lease: %s", attempt.task_id, exc)

    # --- the attempt's work (cancellable as a whole) --------------------------------------------

    async def _attempt(self, attempt: Attempt, task: TaskSubmittedData, limits: TaskLimits) -> None:
        price = self._prices.price(task.model)
        if limits.max_cost_usd is not None and price is None:
            await self._fail(
                attempt,
                "model_not_priced",
                f"The task has a max_cost_usd budget, but the price table has no entry for"
                f" model {task.model!r}; add it to RELAY_MODEL_PRICES or drop the cost limit.",
            )
            return
        budget = Budget(limits, price, self._settings.model_max_tokens)
        async with self._workspace(attempt) as workspace:
            wall = asyncio.timeout(limits.max_wall_seconds)
            try:
                async with wall:
                    await self._converse(attempt, task, workspace, budget)
            except TimeoutError:
                if not wall.expired():
                    raise
                await self._settle(attempt)
                if not attempt.finished:
                    await self._fail_budget(attempt, wall_time_exceeded(limits))
            except BudgetExceeded as exc:
                await self._fail_budget(attempt, exc)

    @asynccontextmanager
    async def _workspace(self, attempt: Attempt) -> AsyncIterator[Workspace]:
        workspace = await asyncio.to_thread(
            Workspace.create,
            self._settings.workspace_root,
            f"{attempt.task_id}-{attempt.number}",
            max_file_bytes=self._settings.max_file_bytes,
        )
        try:
            yield workspace
        finally:
            await asyncio.to_thread(workspace.remove)

    async def _converse(
        self, attempt: Attempt, task: TaskSubmittedData, workspace: Workspace, budget: Budget
    ) -> None:
        messages: list[dict[str, Any]] = [{"role": "user", "content": task.prompt}]
        while True:
            cap = budget.before_call(attempt.calls, attempt.usage, attempt.cost_usd)
            request = ModelRequest(
                model=task.model,
                system=SYSTEM_PROMPT,
                messages=list(messages),
                tools=self._tool_specs,
                max_tokens=cap.max_tokens,
            )
            provider = self._settings.llm_provider
            with model_call_span(provider, request, turn=attempt.calls + 1) as span:
                try:
                    reply = await self._retry.call(
                        partial(self._provider.complete, request), deadline=attempt.deadline
                    )
                except ProviderError as exc:
                    span.set_status(Status(StatusCode.ERROR, exc.code))
                    await self._fail(attempt, exc.code, exc.message)
                    return
                record_reply(span, provider, task.model, reply)
            attempt.calls += 1
            attempt.usage += reply.usage
            attempt.cost_usd = self._prices.cost(task.model, attempt.usage)
            messages.append(reply.as_message())
            budget.after_reply(reply, cap, attempt.usage, attempt.cost_usd)
            if not wants_tools(reply):
                await self._succeed(attempt, reply)
                return
            messages.append(await self._step(attempt, reply, workspace))

    async def _step(
        self, attempt: Attempt, reply: ModelReply, workspace: Workspace
    ) -> dict[str, Any]:
        """Run the reply's tool calls; record the step. Returns the tool_result user turn."""
        results = []
        uploads = []
        for call in reply.tool_uses:
            with tool_call_span(call.name, call.id) as span:
                outcome = await run_tool(workspace, call, self._tools)
                record_tool_outcome(span, outcome)
                if outcome.written is not None:
                    uploads.append(await self._stage(attempt, outcome.written))
            results.append(outcome.as_result(call.id))
        attempt.steps += 1
        events: list[DomainEvent] = [
            attempt.event(
                TaskProgressed,
                TaskProgressedData(
                    attempt=attempt.number,
                    step=attempt.steps,
                    message=progress_message(reply),
                    usage=attempt.usage,
                    cost_usd=report_usd(attempt.cost_usd),
                ),
            )
        ]
        events += [attempt.event(ArtifactUploaded, u) for u in uploads]
        flags = await self._record(attempt, "running", events)
        if flags.cancel_requested:  # a step boundary: covers a cancel whose NOTIFY was lost
            self.running.cancel(attempt.task_id)
            await asyncio.sleep(0)  # the cancellation lands here, before another model call
        return {"role": "user", "content": results}

    async def _stage(self, attempt: Attempt, written: WrittenFile) -> ArtifactUploadedData:
        attempt.writes[written.name] += 1
        uploaded = await stage(
            self._staging,
            tenant_id=attempt.tenant_id,
            task_id=attempt.task_id,
            name=written.name,
            data=written.data,
            write_number=attempt.writes[written.name],
            attempt=attempt.number,
            step=attempt.steps + 1,  # the step in progress
        )
        attempt.artifact_ids.append(uploaded.artifact_id)
        return uploaded

    async def _succeed(self, attempt: Attempt, reply: ModelReply) -> None:
        summary = reply.text or f"Completed {attempt.steps} steps."
        data = TaskSucceededData(summary=clip(summary, MAX_SUMMARY_CHARS), **attempt.totals())
        await self._record(attempt, "succeeded", [attempt.event(TaskSucceeded, data)])
        log.info("task %s: attempt %d succeeded", attempt.task_id, attempt.number)

    async def _fail(
        self, attempt: Attempt, code: str, message: str, *, budget: str | None = None
    ) -> None:
        data = TaskFailedData(
            code=code, message=clip(message, MAX_ERROR_CHARS), budget=budget, **attempt.totals()
        )
        await self._record(attempt, "failed", [attempt.event(TaskFailed, data)])
        log.info("task %s: attempt %d failed (%s)", attempt.task_id, attempt.number, code)

    async def _fail_budget(self, attempt: Attempt, exceeded: BudgetExceeded) -> None:
        await self._fail(attempt, "budget_exceeded", exceeded.message, budget=exceeded.budget)

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

    # --- a run whose worker died (the recovery sweeper) -----------------------------------------

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
                await self.run_task(submitted)
            except Defer as held:
                log.info("task %s: not recovered: %s", run.task_id, held.reason)

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

    # --- task.cancel_requested ----------------------------------------------------------------

    async def cancel_task(self, requested: TaskCancelRequested) -> None:
        """Record the request; whoever runs the task stops it (NOTIFY, then task.cancelled).
        A task not started yet is recorded as cancelled at once, so it never starts."""
        meta = requested.metadata
        reason = requested.data.reason
        async with self._runs.transaction() as tx:
            outcome = await tx.request_cancel(meta.task_id, meta.tenant_id, reason)
            if outcome.effect == "before_start":
                data = TaskCancelledData(attempt=0, reason=reason)
            elif outcome.effect == "orphaned" and outcome.run is not None:
                run = outcome.run
                data = TaskCancelledData(
                    attempt=run.attempt,
                    steps=run.steps,
                    usage=run.usage,
                    cost_usd=run.cost_usd,
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
            self.running.cancel(meta.task_id)  # runs here? no need to wait for the NOTIFY


def _retrieve(future: asyncio.Future[Any]) -> None:
    # A shielded commit whose caller was cancelled: its error is nobody's to raise; read it so
    # asyncio does not log it as never retrieved.
    if not future.cancelled():
        future.exception()
