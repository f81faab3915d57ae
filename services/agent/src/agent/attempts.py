"""One attempt at a task, as the loop keeps it: counters, totals, and the last event it emitted
(each event is caused by the one before it, the first by task.submitted)."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID

from agent.checkpoints import Checkpoint
from agent.models import RunState, RunStatus
from agent.pricing import report_usd
from agent.providers.base import ModelReply
from relay_shared.events import DomainEvent, EventMetadata, Usage

MAX_PROGRESS_CHARS = 300

E = TypeVar("E", bound=DomainEvent)


@dataclass
class Attempt:
    task_id: UUID
    tenant_id: str
    number: int
    cause: EventMetadata
    deadline: float  # on the service's clock: when the wall-time budget runs out
    began: float = 0.0  # on the service's clock: when this attempt started
    wall_used_before: float = 0.0  # working time of the attempts before a question (resumed)
    calls: int = 0  # model replies received
    steps: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    artifact_ids: list[UUID] = field(default_factory=list)
    writes: Counter[str] = field(default_factory=Counter)
    finished: bool = False  # a terminal state or a wait for input is committed: it is over
    committing: asyncio.Future[Any] | None = None  # the commit in flight, if any

    def event(self, cls: type[E], data: Any) -> E:
        event = cls.create(
            data, tenant_id=self.tenant_id, task_id=self.task_id, caused_by=self.cause
        )
        self.cause = event.metadata
        return event

    def state(self, status: RunStatus) -> RunState:
        return RunState(
            self.task_id, self.number, status, self.steps, self.usage, report_usd(self.cost_usd)
        )

    def totals(self) -> dict[str, Any]:
        """The fields every terminal event carries."""
        return {
            "attempt": self.number,
            "steps": self.steps,
            "usage": self.usage,
            "cost_usd": report_usd(self.cost_usd),
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
    return clip(message, MAX_PROGRESS_CHARS)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def wants_tools(reply: ModelReply) -> bool:
    return reply.stop_reason == "tool_use" and bool(reply.tool_uses)


def resumed_attempt(
    task_id: UUID,
    tenant_id: str,
    number: int,
    *,
    cause: EventMetadata,
    checkpoint: Checkpoint,
    now: float,
    max_wall_seconds: float,
) -> Attempt:
    """The attempt that goes on from a checkpoint: its counters, and the wall time left."""
    left = max_wall_seconds - checkpoint.wall_used_seconds
    return Attempt(
        task_id,
        tenant_id,
        number,
        cause=cause,
        deadline=now + left,
        began=now,
        wall_used_before=checkpoint.wall_used_seconds,
        calls=checkpoint.calls,
        steps=checkpoint.step,
        usage=checkpoint.usage,
        cost_usd=checkpoint.cost_usd,
        artifact_ids=list(checkpoint.artifact_ids),
        writes=checkpoint.write_counts(),
    )
