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
from functools import partial
from typing import Any

from opentelemetry.trace import Status, StatusCode

from agent.artifacts import stage
from agent.attempts import Attempt, wants_tools
from agent.budgets import Budget, BudgetExceeded, wall_time_exceeded
from agent.ports import ModelProvider, StagingArea
from agent.pricing import PriceTable
from agent.providers.base import ModelReply, ModelRequest, ProviderError
from agent.recording import AttemptRecorder
from agent.retries import RetryPolicy
from agent.running import RunningAttempts
from agent.settings import AgentSettings
from agent.telemetry import model_call_span, record_reply, record_tool_outcome, tool_call_span
from agent.tools import Tool, WrittenFile, run_tool
from agent.workspace import Workspace
from relay_shared.events import ArtifactUploadedData, TaskLimits, TaskSubmittedData

SYSTEM_PROMPT = (
    "You are Relay's agent, working on a task for a user. You have a private workspace and tools"
    " to write, read and list files in it. Every file you write with write_file is delivered to"
    " the user as an artifact, so put your results in files. Paths are relative to the"
    " workspace. When the task is done, answer with a short summary of what you did."
)


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
    ) -> None:
        self._settings = settings
        self._provider = provider
        self._tools = tools
        self._tool_specs = [t.spec for t in tools.values()]
        self._staging = staging
        self._prices = PriceTable(settings.model_prices)
        self._retry = retry
        self._record = recorder
        self._running = running

    async def run(self, attempt: Attempt, task: TaskSubmittedData, limits: TaskLimits) -> None:
        """Converse until the model is done, a budget or a provider error ends the task, or
        the work is cancelled; each step and the end are committed as they happen."""
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
        async with self._workspace(attempt) as workspace:
            wall = asyncio.timeout(limits.max_wall_seconds)
            try:
                async with wall:
                    await self._converse(attempt, task, workspace, budget)
            except TimeoutError:
                if not wall.expired():
                    raise
                await self._record.settle(attempt)
                if not attempt.finished:
                    await self._record.over_budget(attempt, wall_time_exceeded(limits))
            except BudgetExceeded as exc:
                await self._record.over_budget(attempt, exc)

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
        flags = await self._record.step(attempt, reply, uploads)
        if flags.cancel_requested:  # a step boundary: covers a cancel whose NOTIFY was lost
            self._running.cancel(attempt.task_id)
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
