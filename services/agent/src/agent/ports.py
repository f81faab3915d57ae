"""What the agent needs from outside the process: its ``runs`` table (with the outbox), the
artifacts staging area, a model, the tools it offers the model, and a clock.

The production adapters are opened by ``app.open_ports``; the unit tests' in-memory ones are
in tests/unit/fakes.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

from agent.checkpoints import Checkpoint
from agent.models import CancelOutcome, Claim, ExpiredWait, RunFlags, RunState, StaleRun
from agent.providers.base import ModelReply, ModelRequest
from agent.tools import TOOLS, Tool
from relay_shared.composition import Loops, no_loops
from relay_shared.events import DomainEvent

Clock = Callable[[], float]  # monotonic seconds
Sleep = Callable[[float], Awaitable[None]]


class RunTransaction(Protocol):
    """One transaction on the ``runs`` table, together with the outbox writes."""

    async def claim(
        self,
        task_id: UUID,
        tenant_id: str,
        *,
        worker_id: str,
        lease_seconds: float,
        wall_seconds: float,
        submitted: Mapping[str, Any],
        submitted_metadata: Mapping[str, Any] | None = None,
    ) -> Claim:
        """Start the run, or take it over once its lease expired, under a new lease."""

    async def resume(
        self,
        task_id: UUID,
        question_id: UUID,
        answer: str,
        *,
        worker_id: str,
        lease_seconds: float,
        wall_seconds: float,
    ) -> Claim:
        """Take the run that waits on ``question_id`` (or a resumption of it whose worker died)
        under a new lease, as its next attempt, with the answer stored."""

    async def save(self, state: RunState) -> RunFlags | None:
        """Move the run; None when ``state.attempt`` no longer owns it."""

    async def wait(
        self, state: RunState, checkpoint: Checkpoint, files: Mapping[str, bytes], *, seconds: float
    ) -> bool:
        """Stop the run at its question for at most ``seconds``, saving what it goes on from;
        False when ``state.attempt`` no longer owns it."""

    async def expire_waits(self, *, limit: int) -> list[ExpiredWait]:
        """Fail the runs that waited past their deadline (each taken once)."""

    async def renew_lease(
        self, task_id: UUID, attempt: int, owner: str, lease_seconds: float
    ) -> RunFlags | None:
        """Extend the lease; None when the attempt lost the run."""

    async def release_lease(self, task_id: UUID, attempt: int, owner: str) -> None:
        """Let the run go unfinished: the next delivery may take it over at once."""

    async def abandon(self, task_id: UUID, *, grace_seconds: float) -> RunState | None:
        """Finish a run as failed if it is still stale (its lease expired over
        ``grace_seconds`` ago); None when a worker holds it again, or it finished."""

    async def cancel_reason(self, task_id: UUID) -> str | None: ...

    async def request_cancel(
        self, task_id: UUID, tenant_id: str, reason: str | None
    ) -> CancelOutcome:
        """Record a cancel request and signal the runner (on commit)."""

    async def emit(self, *events: DomainEvent) -> None: ...


class RunStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[RunTransaction]: ...

    async def stale(self, *, grace_seconds: float, limit: int) -> list[StaleRun]:
        """Running runs whose lease expired over ``grace_seconds`` ago, longest-expired first."""


class StagingArea(Protocol):
    """Where the files the model wrote are put for the artifacts service to publish."""

    bucket: str

    async def put(self, key: str, data: bytes, *, content_type: str, sha256: bytes) -> None: ...


class ModelProvider(Protocol):
    """One Messages API call, whichever provider serves it (providers/)."""

    async def complete(self, request: ModelRequest) -> ModelReply: ...


@dataclass(frozen=True)
class Ports:
    """What the agent service needs from outside the process."""

    runs: RunStore
    staging: StagingArea
    provider: ModelProvider
    tools: Mapping[str, Tool] = field(default_factory=lambda: TOOLS)  # what the model may call
    clock: Clock = time.monotonic  # the attempts' wall deadlines and retry waits
    sleep: Sleep = asyncio.sleep  # retry waits
    # What runs beside the HTTP server, given the built service: the consumers, the recovery
    # sweeper, the cancel listener, the outbox relay and housekeeping.
    loops: Loops = no_loops
