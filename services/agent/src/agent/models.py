"""The agent's own records."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from agent.checkpoints import Resumption
from relay_shared.events import EventMetadata, TaskSubmitted, TaskSubmittedData, Usage

# 'waiting': the run asked its client a question and no worker holds it (checkpoints.py)
RunStatus = Literal["running", "waiting", "succeeded", "failed", "cancelled"]


@dataclass(frozen=True)
class RunState:
    """What a ``runs`` row says about the attempt that owns it."""

    task_id: UUID
    attempt: int
    status: RunStatus
    steps: int
    usage: Usage
    cost_usd: float = 0.0


# --- what claiming a run for a delivered task.submitted found ---------------------------------


@dataclass(frozen=True)
class Claimed:
    """This worker now holds the run's lease, as attempt ``attempt``; ``resume`` is set when the
    run waited for input and has its answer: the attempt goes on from there."""

    attempt: int
    resume: Resumption | None = None


@dataclass(frozen=True)
class Finished:
    """The run ended before (or was cancelled before it started), or it waits for input, or
    the answer this delivery brings was already taken: this delivery must not run it."""

    status: RunStatus


@dataclass(frozen=True)
class Held:
    """Another attempt holds a live lease; ``busy_seconds`` until its lease and its wall-time
    budget have both run out (after that it has finished, or died)."""

    busy_seconds: float


Claim = Claimed | Finished | Held


@dataclass(frozen=True)
class RunFlags:
    """What the owner of a run learns each time it writes to it (a save, a lease renewal)."""

    cancel_requested: bool = False


# --- what a task.cancel_requested did -------------------------------------------------------

CancelEffect = Literal[
    "before_start",  # no run yet: recorded as cancelled (attempt 0), so it never starts
    "signalled",  # a live run: flagged and NOTIFYed, its runner stops it
    "orphaned",  # a run whose holder's lease expired: cancelled here and now (``run``)
    "waiting",  # a run waiting for input (no holder): cancelled here and now (``run``)
    "ignored",  # already finished, or a cancel was already requested
]


@dataclass(frozen=True)
class CancelOutcome:
    effect: CancelEffect
    run: RunState | None = None  # the run's totals when ``effect`` is "orphaned" or "waiting"
    artifact_ids: tuple[UUID, ...] = ()  # with "waiting": uploaded before the question


# --- a run whose worker died ----------------------------------------------------------------


@dataclass(frozen=True)
class StaleRun:
    """A run still 'running' whose holder stopped renewing its lease a while ago, with what it
    was claimed with (the task.submitted's data and metadata)."""

    task_id: UUID
    tenant_id: str
    attempt: int
    submitted: Mapping[str, Any]
    submitted_metadata: Mapping[str, Any] | None

    def submitted_event(self) -> TaskSubmitted:
        """The task.submitted to run it again as; rebuilt for runs claimed before its metadata
        was stored (same correlation: a task's flow is correlated by its id)."""
        data = TaskSubmittedData.model_validate(self.submitted)
        if self.submitted_metadata is None:
            return TaskSubmitted.create(data, tenant_id=self.tenant_id, task_id=self.task_id)
        metadata = EventMetadata.model_validate(self.submitted_metadata)
        return TaskSubmitted(metadata=metadata, data=data)


# --- a run that waited too long for its answer ----------------------------------------------


@dataclass(frozen=True)
class ExpiredWait:
    """A waiting run failed for input_timeout: its totals, and what to cause the event with."""

    run: RunState
    tenant_id: str
    artifact_ids: tuple[UUID, ...]
    submitted_metadata: Mapping[str, Any] | None
