"""The agent loop: run a submitted task as a conversation between a model and the tools.

Provider-agnostic: the model is whatever ModelProvider the composition root chose. Every event
an attempt emits goes to the outbox in the transaction that moves its ``runs`` row, and each
event is caused by the one before it (the first by task.submitted).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from uuid import UUID

from agent.artifacts import StagingArea, stage
from agent.models import RunState, RunStatus
from agent.providers.base import ModelProvider, ModelReply, ModelRequest, ProviderError
from agent.settings import AgentSettings
from agent.tools import TOOL_SPECS, WrittenFile, run_tool
from agent.workspace import Workspace
from relay_shared.events import (
    ArtifactUploaded,
    ArtifactUploadedData,
    DomainEvent,
    EventMetadata,
    TaskFailed,
    TaskFailedData,
    TaskProgressed,
    TaskProgressedData,
    TaskStarted,
    TaskStartedData,
    TaskSubmitted,
    TaskSubmittedData,
    TaskSucceeded,
    TaskSucceededData,
    Usage,
)

log = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You are Relay's agent, working on a task for a user. You have a private workspace and tools"
    " to write, read and list files in it. Every file you write with write_file is delivered to"
    " the user as an artifact, so put your results in files. Paths are relative to the"
    " workspace. When the task is done, answer with a short summary of what you did."
)
MAX_PROGRESS_CHARS = 300
# Terminal texts go into one event; keep them far below EventBridge's 256 KiB entry limit.
MAX_SUMMARY_CHARS = 8000
MAX_ERROR_CHARS = 2000

E = TypeVar("E", bound=DomainEvent)


class RunTransaction(Protocol):
    async def claim(self, task_id: UUID, tenant_id: str, worker_id: str) -> int | None:
        """Start or restart the run; the attempt number, or None if it already finished."""

    async def save(self, state: RunState) -> bool:
        """Move the run; False when ``state.attempt`` no longer owns it."""

    async def emit(self, *events: DomainEvent) -> None: ...


class RunStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[RunTransaction]: ...


class AttemptSuperseded(Exception):
    """A newer attempt took the run over (or it finished); this one stops, emitting nothing."""


@dataclass
class Attempt:
    """One attempt at a task: its counters, and the last event it emitted (for causation)."""

    task_id: UUID
    tenant_id: str
    number: int
    cause: EventMetadata
    steps: int = 0
    usage: Usage = field(default_factory=Usage)
    artifact_ids: list[UUID] = field(default_factory=list)
    writes: Counter[str] = field(default_factory=Counter)

    def event(self, cls: type[E], data: Any) -> E:
        event = cls.create(
            data, tenant_id=self.tenant_id, task_id=self.task_id, caused_by=self.cause
        )
        self.cause = event.metadata
        return event

    def state(self, status: RunStatus) -> RunState:
        return RunState(self.task_id, self.number, status, self.steps, self.usage)

    def totals(self) -> dict[str, Any]:
        """The fields every terminal event carries."""
        return {
            "attempt": self.number,
            "steps": self.steps,
            "usage": self.usage,
            "artifact_ids": list(self.artifact_ids),
        }


def progress_message(reply: ModelReply) -> str:
    """The step's first text block, else what it ran: 'Ran write_file(result.md)'."""
    first_text = next((b.text.strip() for b in reply.content if b.type == "text"), "")
    message = first_text or "Ran " + ", ".join(
        f"{call.name}({call.input['path']})"
        if isinstance(call.input.get("path"), str)
        else f"{call.name}()"
        for call in reply.tool_uses
    )
    return _clip(message, MAX_PROGRESS_CHARS)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def wants_tools(reply: ModelReply) -> bool:
    return reply.stop_reason == "tool_use" and bool(reply.tool_uses)


class AgentService:
    def __init__(
        self,
        settings: AgentSettings,
        *,
        runs: RunStore,
        provider: ModelProvider,
        staging: StagingArea,
    ) -> None:
        self._settings = settings
        self._runs = runs
        self._provider = provider
        self._staging = staging

    async def run_task(self, submitted: TaskSubmitted) -> None:
        """Handle task.submitted: run it unless it already finished. Raises on anything
        unexpected, leaving the run 'running' so the redelivered message starts it over."""
        attempt = await self._claim(submitted)
        if attempt is None:
            log.info("task %s already finished; not running it again", submitted.metadata.task_id)
            return
        log.info("task %s: attempt %d started", attempt.task_id, attempt.number)
        try:
            async with self._workspace(attempt) as workspace:
                await self._converse(attempt, submitted.data, workspace)
        except AttemptSuperseded:
            log.warning("task %s: attempt %d was superseded", attempt.task_id, attempt.number)

    async def _claim(self, submitted: TaskSubmitted) -> Attempt | None:
        meta = submitted.metadata
        async with self._runs.transaction() as tx:
            number = await tx.claim(meta.task_id, meta.tenant_id, self._settings.worker_id)
            if number is None:
                return None
            attempt = Attempt(meta.task_id, meta.tenant_id, number, cause=meta)
            await tx.emit(
                attempt.event(
                    TaskStarted,
                    TaskStartedData(attempt=number, worker_id=self._settings.worker_id),
                )
            )
        return attempt

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
        self, attempt: Attempt, task: TaskSubmittedData, workspace: Workspace
    ) -> None:
        messages: list[dict[str, Any]] = [{"role": "user", "content": task.prompt}]
        for _turn in range(self._settings.max_turns):
            request = ModelRequest(
                model=task.model,
                system=SYSTEM_PROMPT,
                messages=list(messages),
                tools=TOOL_SPECS,
                max_tokens=self._settings.model_max_tokens,
            )
            try:
                reply = await self._provider.complete(request)
            except ProviderError as exc:
                await self._fail(attempt, exc.code, exc.message)
                return
            attempt.usage += reply.usage
            messages.append(reply.as_message())
            if not wants_tools(reply):
                await self._succeed(attempt, reply)
                return
            messages.append(await self._step(attempt, reply, workspace))
        await self._fail(
            attempt,
            "max_turns_exceeded",
            f"The model did not finish within {self._settings.max_turns} turns.",
        )

    async def _step(
        self, attempt: Attempt, reply: ModelReply, workspace: Workspace
    ) -> dict[str, Any]:
        """Run the reply's tool calls; record the step. Returns the tool_result user turn."""
        results = []
        uploads = []
        for call in reply.tool_uses:
            outcome = await run_tool(workspace, call)
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
                ),
            )
        ]
        events += [attempt.event(ArtifactUploaded, u) for u in uploads]
        await self._record(attempt, "running", events)
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
        data = TaskSucceededData(summary=_clip(summary, MAX_SUMMARY_CHARS), **attempt.totals())
        await self._record(attempt, "succeeded", [attempt.event(TaskSucceeded, data)])
        log.info("task %s: attempt %d succeeded", attempt.task_id, attempt.number)

    async def _fail(self, attempt: Attempt, code: str, message: str) -> None:
        data = TaskFailedData(
            code=code, message=_clip(message, MAX_ERROR_CHARS), **attempt.totals()
        )
        await self._record(attempt, "failed", [attempt.event(TaskFailed, data)])
        log.info("task %s: attempt %d failed (%s)", attempt.task_id, attempt.number, code)

    async def _record(
        self, attempt: Attempt, status: RunStatus, events: Sequence[DomainEvent]
    ) -> None:
        async with self._runs.transaction() as tx:
            if not await tx.save(attempt.state(status)):
                raise AttemptSuperseded
            await tx.emit(*events)
