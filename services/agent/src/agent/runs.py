"""What the agent needs from its ``runs`` table (repository.PostgresRuns; an in-memory fake in
the unit tests). Every method runs inside one transaction with the outbox writes."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol
from uuid import UUID

from agent.models import CancelOutcome, Claim, RunFlags, RunState, StaleRun
from relay_shared.events import DomainEvent


class RunTransaction(Protocol):
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

    async def save(self, state: RunState) -> RunFlags | None:
        """Move the run; None when ``state.attempt`` no longer owns it."""

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


class StaleRuns(Protocol):
    async def stale(self, *, grace_seconds: float, limit: int) -> list[StaleRun]:
        """Running runs whose lease expired over ``grace_seconds`` ago, longest-expired first."""
