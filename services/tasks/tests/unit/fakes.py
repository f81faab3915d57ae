"""In-memory implementations of the tasks service's ports (tasks.ports), and ``Fakes``: one of
each, whose ``ports()`` is the service's whole outside world."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from uuid import UUID

from relay_shared.events import DomainEvent
from relay_shared.outbox import to_outbound
from tasks.lifecycle import TaskState, TaskStatus
from tasks.models import IdempotencyClaim, IdempotencyRecord, PagePosition, Task, TenantUsage
from tasks.ports import Claimed, Ports


class InMemoryTaskStore:
    """The TaskStore contract on dicts. A transaction sees and rolls back like PostgreSQL's:
    an exception restores everything it changed."""

    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=UTC)
        self.tasks: dict[UUID, Task] = {}
        self.keys: dict[tuple[str, str], tuple[IdempotencyRecord, datetime]] = {}
        self.handled: set[UUID] = set()
        self.outbox: list[DomainEvent] = []
        # keys another (uncommitted) transaction holds, as pg_try_advisory_xact_lock would see
        self.keys_in_flight: set[tuple[str, str]] = set()
        self._serial = asyncio.Lock()

    def tick(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now

    async def insert_task(self, task: Task, submitted: DomainEvent) -> None:
        async with self.transaction() as tx:
            await tx.insert_task(task, submitted)

    def reads(self) -> AbstractAsyncContextManager[InMemoryTaskTransaction]:
        return self.transaction()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[InMemoryTaskTransaction]:
        async with self._serial:
            saved = (dict(self.tasks), dict(self.keys), set(self.handled), list(self.outbox))
            try:
                yield InMemoryTaskTransaction(self)
            except BaseException:
                self.tasks, self.keys, self.handled, self.outbox = saved
                raise


class InMemoryTaskTransaction:
    def __init__(self, store: InMemoryTaskStore) -> None:
        self._s = store

    async def insert_task(
        self, task: Task, submitted: DomainEvent, *, key: IdempotencyClaim | None = None
    ) -> None:
        await self.publish(submitted)  # first: an event too large stores nothing
        self._s.tasks[task.id] = task
        if key is not None:
            record = IdempotencyRecord(key.request_hash, task.id)
            self._s.keys[(task.tenant_id, key.key)] = (record, self._s.now + key.ttl)

    async def task(self, tenant_id: str, task_id: UUID) -> Task | None:
        task = self._s.tasks.get(task_id)
        return task if task is not None and task.tenant_id == tenant_id else None

    async def tasks(
        self, tenant_id: str, *, status: TaskStatus | None, after: PagePosition | None, limit: int
    ) -> list[Task]:
        def key(t: Task) -> tuple[datetime, UUID]:
            return (t.created_at, t.id)

        found = [
            t
            for t in self._s.tasks.values()
            if t.tenant_id == tenant_id
            and (status is None or t.state.status is status)
            and (after is None or key(t) < (after.created_at, after.id))
        ]
        return sorted(found, key=key, reverse=True)[:limit]

    async def lock_state(self, tenant_id: str, task_id: UUID) -> TaskState | None:
        task = await self.task(tenant_id, task_id)
        return task.state if task else None

    async def save_state(self, tenant_id: str, task_id: UUID, state: TaskState) -> bool:
        task = await self.task(tenant_id, task_id)
        if task is None or task.state.terminal:
            return False
        self._s.tasks[task_id] = replace(task, state=state, updated_at=self._s.tick())
        return True

    async def tenant_usage(self, tenant_id: str) -> TenantUsage:
        # transactions are serial here, so the tenant's submissions are held already
        start = self._s.now.replace(hour=0, minute=0, second=0, microsecond=0)
        mine = [t for t in self._s.tasks.values() if t.tenant_id == tenant_id]
        today = [t for t in mine if t.created_at >= start]
        return TenantUsage(
            active_tasks=sum(not t.state.terminal for t in mine),
            spend_usd=sum(t.state.cost_usd for t in today),
            tokens=sum(_tokens(t) for t in today),
            seconds_left_today=(start + timedelta(days=1) - self._s.now).total_seconds(),
        )

    async def try_lock_idempotency_key(self, tenant_id: str, key: str) -> bool:
        return (tenant_id, key) not in self._s.keys_in_flight

    async def idempotency_record(self, tenant_id: str, key: str) -> IdempotencyRecord | None:
        entry = self._s.keys.get((tenant_id, key))
        if entry is None or entry[1] <= self._s.now:
            return None
        return entry[0]

    async def claim_locking(self, event: DomainEvent) -> Claimed:
        if event.metadata.event_id in self._s.handled:
            return Claimed(first=False)
        self._s.handled.add(event.metadata.event_id)
        meta = event.metadata
        return Claimed(first=True, state=await self.lock_state(meta.tenant_id, meta.task_id))

    async def publish(self, event: DomainEvent) -> None:
        to_outbound(event).check_size()  # the real outbox refuses oversized events the same way
        self._s.outbox.append(event)


def _tokens(task: Task) -> int:
    usage = task.state.usage
    return (
        usage.input_tokens
        + usage.output_tokens
        + usage.cache_creation_input_tokens
        + usage.cache_read_input_tokens
    )


@dataclass
class Fakes:
    """One of each fake; ``ports()`` is the service's whole outside world, in memory."""

    store: InMemoryTaskStore = field(default_factory=InMemoryTaskStore)

    def ports(self) -> Ports:
        return Ports(store=self.store, clock=self.store.tick)
