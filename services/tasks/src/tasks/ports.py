"""What the tasks service needs from outside the process: the task store (PostgreSQL, with the
outbox and inbox in the same transactions). The composition root fills it with the production
adapter (``repository.py``), unit tests with the fake in tests/unit/fakes.py."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID

from relay_shared.composition import Loops, no_loops
from relay_shared.events import DomainEvent
from tasks.lifecycle import TaskState, TaskStatus
from tasks.models import IdempotencyClaim, IdempotencyRecord, PagePosition, Task, TenantUsage


@dataclass(frozen=True)
class Claimed:
    """An event's inbox claim and, if it is the first, its task's state, locked."""

    first: bool  # False: handled before (nothing else was read)
    state: TaskState | None = None  # None: the tenant has no such task


class TaskTransaction(Protocol):
    """Everything done through one of these commits together, or not at all."""

    async def insert_task(
        self, task: Task, submitted: DomainEvent, *, key: IdempotencyClaim | None = None
    ) -> None:
        """Store a new task, its ``task.submitted`` in the outbox and, with ``key``, the key's
        record (replacing an expired one); EventTooLarge stores nothing."""
        ...

    async def task(self, tenant_id: str, task_id: UUID) -> Task | None: ...

    async def tasks(
        self, tenant_id: str, *, status: TaskStatus | None, after: PagePosition | None, limit: int
    ) -> list[Task]:
        """Newest first, by (created_at, id) descending, starting after ``after``."""
        ...

    async def lock_state(self, tenant_id: str, task_id: UUID) -> TaskState | None:
        """The task's state, locked until the transaction ends."""
        ...

    async def save_state(self, tenant_id: str, task_id: UUID, state: TaskState) -> bool:
        """Store ``state`` unless the stored task is already terminal; True if stored."""
        ...

    async def tenant_usage(self, tenant_id: str) -> TenantUsage:
        """The tenant's usage against its quotas, with the tenant's submissions held until the
        transaction ends (so two submits cannot both take the last free slot)."""
        ...

    async def try_lock_idempotency_key(self, tenant_id: str, key: str) -> bool:
        """Hold the key until the transaction ends; False if another transaction holds it."""
        ...

    async def idempotency_record(self, tenant_id: str, key: str) -> IdempotencyRecord | None:
        """The key's record, unless there is none or it has expired."""
        ...

    async def claim_locking(self, event: DomainEvent) -> Claimed:
        """Record ``event`` as handled and, the first time, lock its task's state until the
        transaction ends (one round trip for both)."""
        ...

    async def publish(self, event: DomainEvent) -> None:
        """Queue ``event`` in the outbox; it goes onto the bus after commit."""
        ...


class TaskStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[TaskTransaction]: ...

    def reads(self) -> AbstractAsyncContextManager[TaskTransaction]:
        """For reads of one statement each, which need no transaction around them: no BEGIN
        and COMMIT round trips. Never for writes."""
        ...

    async def insert_task(self, task: Task, submitted: DomainEvent) -> None:
        """``TaskTransaction.insert_task`` on its own, atomic without a transaction around it:
        a submission with nothing to read or hold first."""
        ...


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Ports:
    """What the tasks service needs from outside the process."""

    store: TaskStore
    clock: Callable[[], datetime] = utc_now  # a new task's created_at
    # what runs beside the HTTP server in production, given the built service: the SQS
    # consumer, the outbox relay and housekeeping
    loops: Loops = no_loops
