"""An attempt's work: the conversation between the model and the tools, within the task's
budgets, in a private workspace.

Provider-agnostic: the model is whatever ModelProvider the composition root chose. The work
runs as one asyncio task (runner.py), so stopping it (a cancel request, a lost lease, shutdown)
is one ``cancel()`` that interrupts whatever it awaits; the wall-time budget is an asyncio
deadline around it for the same reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any
from uuid import uuid4

from opentelemetry.trace import Status, StatusCode

from agent.artifacts import stage
from agent.attempts import Attempt, wants_tools
from agent.budgets import Budget, BudgetExceeded, wall_time_exceeded
from agent.checkpoints import Checkpoint, Question, Resumption
from agent.ports import Clock, ModelProvider, StagingArea
from agent.pricing import PriceTable
from agent.providers.base import ModelReply, ModelRequest, ProviderError, ToolUseBlock
from agent.recording import AttemptRecorder
from agent.retries import RetryPolicy
from agent.running import RunningAttempts
from agent.settings import AgentSettings
from agent.telemetry import model_call_span, record_reply, record_tool_outcome, tool_call_span
from agent.tools import ASK_USER, AskUserInput, Tool, ToolOutcome, WrittenFile, read_input, run_tool
from agent.workspace import Workspace
from relay_shared.events import ArtifactUploadedData, TaskLimits, TaskSubmittedData

SYSTEM_PROMPT = (
    "You are Relay's agent, working on a task for a user. You have a private workspace and tools"
    " to write, read and list files in it. Every file you write with write_file is delivered to"
    " the user as an artifact, so put your results in files. Paths are relative to the"
    " workspace. If you cannot go on without the user's answer to a question, ask it with"
    " ask_user. When the task is done, answer with a short summary of what you did."
)


@dataclass(frozen=True)
class _Ask:
    """The reply's ask_user call: where its result goes among the reply's results."""

    index: int
    tool_use_id: str
    question: str


class AttemptWork:
    def __init__(
        self,
        settings: AgentSettings,
        *,
        provider: ModelProvider,
        tools: Mapping[str, Tool],
        staging: StagingArea,
        retry: RetryPolicy,
        recorder: AttemptRecorder,
        running: RunningAttempts,
        clock: Clock,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._provider = provider
        self._tools = tools
        self._tool_specs = [t.spec for t in tools.values()]
        self._staging = staging
        self._prices = PriceTable(settings.model_prices)
        self._retry = retry
        self._record = recorder
        self._running = running

    async def run(
        self,
        attempt: Attempt,
        task: TaskSubmittedData,
        limits: TaskLimits,
        resume: Resumption | None = None,
    ) -> None:
        """Converse until the model is done, asks its user a question (the run then waits,
        saved), a budget or a provider error ends the task, or the work is cancelled; each step
        and the end are committed as they happen. ``resume``: go on from a saved question."""
        price = self._prices.price(task.model)
        if limits.max_cost_usd is not None and price is None:
            await self._record.failed(
                attempt,
                "model_not_priced",
                f"The task has a max_cost_usd budget, but the price table has no entry for"
                f" model {task.model!r}; add it to RELAY_MODEL_PRICES or drop the cost limit.",
            )
            return
        budget = Budget(limits, price, self._settings.model_max_tokens)
        if resume is None:
            messages: list[dict[str, Any]] = [{"role": "user", "content": task.prompt}]
        else:
            messages = resume.checkpoint.messages_with(resume.answer)
        async with self._workspace(attempt, resume) as workspace:
            # wall time counts working time only: a resumed attempt has what the wait left
            wall = asyncio.timeout(max(0.0, limits.max_wall_seconds - attempt.wall_used_before))
            try:
                async with wall:
                    await self._converse(
                        attempt, task, workspace, budget, limits=limits, messages=messages
                    )
            except TimeoutError:
                if not wall.expired():
                    raise
                await self._record.settle(attempt)
                if not attempt.finished:
                    await self._record.over_budget(attempt, wall_time_exceeded(limits))
            except BudgetExceeded as exc:
                await self._record.over_budget(attempt, exc)

    @asynccontextmanager
    async def _workspace(
        self, attempt: Attempt, resume: Resumption | None
    ) -> AsyncIterator[Workspace]:
        workspace = await asyncio.to_thread(
            Workspace.create,
            self._settings.workspace_root,
            f"{attempt.task_id}-{attempt.number}",
            max_file_bytes=self._settings.max_file_bytes,
        )
        try:
            if resume is not None:
                await asyncio.to_thread(workspace.restore, resume.files)
            yield workspace
        finally:
            await asyncio.to_thread(workspace.remove)

    async def _converse(
        self,
        attempt: Attempt,
        task: TaskSubmittedData,
        workspace: Workspace,
        budget: Budget,
        *,
        limits: TaskLimits,
        messages: list[dict[str, Any]],
    ) -> None:
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
                    await self._record.failed(attempt, exc.code, exc.message)
                    return
                record_reply(span, provider, task.model, reply)
            attempt.calls += 1
            attempt.usage += reply.usage
            attempt.cost_usd = self._prices.cost(task.model, attempt.usage)
            messages.append(reply.as_message())
            budget.after_reply(reply, cap, attempt.usage, attempt.cost_usd)
            if not wants_tools(reply):
                await self._record.succeeded(attempt, reply)
                return
            answer_turn = await self._step(attempt, reply, workspace, limits, messages)
            if answer_turn is None:
                return  # the run waits for its user's answer, saved; no worker holds it
            messages.append(answer_turn)

    async def _step(
        self,
        attempt: Attempt,
        reply: ModelReply,
        workspace: Workspace,
        limits: TaskLimits,
        messages: list[dict[str, Any]],
    ) -> dict[str, Any] | None:
        """Run the reply's tool calls; record the step. Returns the tool_result user turn, or
        None when the reply asked its user a question and the run now waits for the answer."""
        results: list[dict[str, Any]] = []
        uploads: list[ArtifactUploadedData] = []
        ask: _Ask | None = None
        for call in reply.tool_uses:
            with tool_call_span(call.name, call.id) as span:
                if call.name == ASK_USER and ASK_USER in self._tools:
                    outcome = await self._question(call, workspace, asked=ask is not None)
                    if isinstance(outcome, str):
                        ask = _Ask(len(results), call.id, outcome)
                        continue
                else:
                    outcome = await run_tool(workspace, call, self._tools)
                record_tool_outcome(span, outcome)
                if outcome.written is not None:
                    uploads.append(await self._stage(attempt, outcome.written))
            results.append(outcome.as_result(call.id))
        attempt.steps += 1
        if ask is not None:
            checkpoint = self._checkpoint(attempt, ask, messages, results)
            files = await asyncio.to_thread(workspace.snapshot)
            wait = limits.max_wait_seconds or self._settings.default_max_wait_seconds
            flags = await self._record.ask(
                attempt, reply, uploads, checkpoint, files, wait_seconds=wait
            )
        else:
            flags = await self._record.step(attempt, reply, uploads)
        if flags.cancel_requested:  # a step boundary: covers a cancel whose NOTIFY was lost
            self._running.cancel(attempt.task_id)
            await asyncio.sleep(0)  # the cancellation lands here, before another model call
        if ask is not None:
            return None
        return {"role": "user", "content": results}

    async def _question(
        self, call: ToolUseBlock, workspace: Workspace, *, asked: bool
    ) -> str | ToolOutcome:
        """An ask_user call's question, or the error result that refuses it."""
        if asked:
            return ToolOutcome("Ask one question at a time; this one was not asked.", True)
        args = read_input(call, AskUserInput)
        if isinstance(args, ToolOutcome):
            return args
        assert isinstance(args, AskUserInput)
        size = await asyncio.to_thread(workspace.size)
        if size > self._settings.checkpoint_max_bytes:
            return ToolOutcome(
                f"The task cannot pause for an answer: its workspace holds {size} bytes, more"
                f" than the {self._settings.checkpoint_max_bytes} a waiting task may keep."
                " Go on without the answer.",
                True,
            )
        return args.question

    def _checkpoint(
        self,
        attempt: Attempt,
        ask: _Ask,
        messages: list[dict[str, Any]],
        results: list[dict[str, Any]],
    ) -> Checkpoint:
        worked = attempt.wall_used_before + max(0.0, self._clock() - attempt.began)
        return Checkpoint(
            question=Question(id=uuid4(), text=ask.question, tool_use_id=ask.tool_use_id),
            step=attempt.steps,
            messages=list(messages),
            results=list(results),
            ask_index=ask.index,
            calls=attempt.calls,
            usage=attempt.usage,
            cost_usd=attempt.cost_usd,
            artifact_ids=list(attempt.artifact_ids),
            writes=dict(attempt.writes),
            wall_used_seconds=worked,
        )

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
