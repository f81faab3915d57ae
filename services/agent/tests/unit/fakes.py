"""In-memory implementations of the agent's ports, and ``Fakes``: one of each, bundled as the
``Ports`` the service is built on (``create_app(settings, ports=given(fakes.ports()))`` or
``build(settings, fakes.ports())``)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from botocore.exceptions import EndpointConnectionError

from agent.models import (
    CancelOutcome,
    Claim,
    Claimed,
    Finished,
    Held,
    RunFlags,
    RunState,
    StaleRun,
)
from agent.ports import ModelProvider, Ports
from agent.providers.base import ModelReply, ModelRequest
from agent.providers.scripted import ScriptedProvider
from agent.tools import TOOLS, Tool
from relay_shared.events import DomainEvent, Usage


class FakeClock:
    """Monotonic seconds that move only when told to (retry waits and lease expiry)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class InMemoryRuns:
    """The runs table and the outbox, with commit-or-nothing transactions, mirroring the SQL in
    agent.repository (leases on ``clock``; NOTIFY delivered to ``on_notify`` on commit)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.rows: dict[UUID, dict[str, Any]] = {}
        self.events: list[DomainEvent] = []
        self.commits: list[list[DomainEvent]] = []  # the events of each committed transaction
        self.notified: list[UUID] = []
        self.listeners: list[Callable[[UUID], object]] = []  # one per agent process

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Transaction]:
        tx = _Transaction(copy.deepcopy(self.rows), self.clock())
        yield tx
        self.rows = tx.rows
        self.events.extend(tx.events)
        if tx.events:
            self.commits.append(list(tx.events))
        for task_id in tx.notifies:
            self.notified.append(task_id)
            for listener in self.listeners:
                listener(task_id)

    def names(self) -> list[str]:
        return [e.name for e in self.events]

    async def stale(self, *, grace_seconds: float, limit: int) -> list[StaleRun]:
        now = self.clock()
        found = sorted(
            (
                (row["lease_expires_at"], task_id, row)
                for task_id, row in self.rows.items()
                if row["status"] == "running" and row["lease_expires_at"] < now - grace_seconds
            ),
            key=lambda item: item[0],
        )
        return [
            StaleRun(
                task_id,
                row["tenant_id"],
                row["attempt"],
                row["submitted"],
                row.get("submitted_metadata"),
            )
            for _, task_id, row in found[:limit]
        ]

    def terminal(self) -> list[DomainEvent]:
        return [e for e in self.events if e.terminal]


class _Transaction:
    def __init__(self, rows: dict[UUID, dict[str, Any]], now: float) -> None:
        self.rows = rows
        self.now = now
        self.events: list[DomainEvent] = []
        self.notifies: list[UUID] = []

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
        row = self.rows.get(task_id)
        lease = {
            "lease_owner": worker_id,
            "lease_expires_at": self.now + lease_seconds,
            "deadline_at": self.now + wall_seconds,
            "submitted": dict(submitted),
            "submitted_metadata": None if submitted_metadata is None else dict(submitted_metadata),
            "steps": 0,
            "usage": Usage(),
            "cost_usd": 0.0,
        }
        if row is None:
            self.rows[task_id] = {
                "tenant_id": tenant_id,
                "status": "running",
                "attempt": 1,
                "cancel_requested": False,
                "cancel_reason": None,
                **lease,
            }
            return Claimed(1)
        if row["status"] != "running":
            return Finished(row["status"])
        if row["lease_expires_at"] > self.now:
            busy_until = max(row["lease_expires_at"], row["deadline_at"])
            return Held(busy_until - self.now)
        row.update(attempt=row["attempt"] + 1, **lease)
        return Claimed(int(row["attempt"]))

    def _owned(self, task_id: UUID, attempt: int) -> dict[str, Any] | None:
        row = self.rows.get(task_id)
        if row is None or row["attempt"] != attempt or row["status"] != "running":
            return None
        return row

    async def save(self, state: RunState) -> RunFlags | None:
        row = self._owned(state.task_id, state.attempt)
        if row is None:
            return None
        row.update(
            status=state.status, steps=state.steps, usage=state.usage, cost_usd=state.cost_usd
        )
        return RunFlags(cancel_requested=row["cancel_requested"])

    async def renew_lease(
        self, task_id: UUID, attempt: int, owner: str, lease_seconds: float
    ) -> RunFlags | None:
        row = self._owned(task_id, attempt)
        if row is None or row["lease_owner"] != owner:
            return None
        row["lease_expires_at"] = self.now + lease_seconds
        return RunFlags(cancel_requested=row["cancel_requested"])

    async def release_lease(self, task_id: UUID, attempt: int, owner: str) -> None:
        row = self._owned(task_id, attempt)
        if row is not None and row["lease_owner"] == owner:
            row["lease_expires_at"] = self.now

    async def abandon(self, task_id: UUID, *, grace_seconds: float) -> RunState | None:
        row = self.rows.get(task_id)
        if (
            row is None
            or row["status"] != "running"
            or row["lease_expires_at"] >= self.now - grace_seconds
        ):
            return None
        row["status"] = "failed"
        return RunState(
            task_id, row["attempt"], "failed", row["steps"], row["usage"], row["cost_usd"]
        )

    async def cancel_reason(self, task_id: UUID) -> str | None:
        return self.rows[task_id]["cancel_reason"]

    async def request_cancel(
        self, task_id: UUID, tenant_id: str, reason: str | None
    ) -> CancelOutcome:
        row = self.rows.get(task_id)
        if row is None:
            self.rows[task_id] = {
                "tenant_id": tenant_id,
                "status": "cancelled",
                "attempt": 0,
                "steps": 0,
                "usage": Usage(),
                "cost_usd": 0.0,
                "cancel_requested": True,
                "cancel_reason": reason,
            }
            return CancelOutcome("before_start")
        if row["status"] != "running" or row["cancel_requested"]:
            return CancelOutcome("ignored")
        row.update(cancel_requested=True, cancel_reason=reason)
        if row["lease_expires_at"] <= self.now:
            row["status"] = "cancelled"
            run = RunState(
                task_id, row["attempt"], "cancelled", row["steps"], row["usage"], row["cost_usd"]
            )
            return CancelOutcome("orphaned", run)
        self.notifies.append(task_id)
        return CancelOutcome("signalled")

    async def emit(self, *events: DomainEvent) -> None:
        self.events.extend(events)


class InMemoryStaging:
    bucket = "relay-test-artifacts"

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str, bytes]] = {}

    async def put(self, key: str, data: bytes, *, content_type: str, sha256: bytes) -> None:
        self.objects[key] = (data, content_type, sha256)


class RecordingProvider:
    """Wraps a provider (or a list of canned replies) and keeps every request it was sent."""

    def __init__(
        self,
        inner: ModelProvider | None = None,
        replies: Iterable[ModelReply | Exception] = (),
    ) -> None:
        self._inner = inner
        self._replies = list(replies)
        self.requests: list[ModelRequest] = []

    async def complete(self, request: ModelRequest) -> ModelReply:
        self.requests.append(request)
        if self._inner is not None:
            return await self._inner.complete(request)
        reply = self._replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


class BlockedProvider:
    """A model call that never answers until cancelled; it records that it was, and when."""

    def __init__(self) -> None:
        self.called = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.cancelled_at: float | None = None
        self.calls = 0

    async def complete(self, request: ModelRequest) -> ModelReply:
        self.calls += 1
        self.called.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled_at = asyncio.get_running_loop().time()
            self.cancelled.set()
            raise
        raise AssertionError("unreachable")


class S3Outage:
    """A staging area whose endpoint is unreachable for the first ``failures`` uploads."""

    bucket = "relay-test-artifacts"

    def __init__(self, failures: int = 1) -> None:
        self.failures = failures
        self.objects: dict[str, bytes] = {}

    async def put(self, key: str, data: bytes, *, content_type: str, sha256: bytes) -> None:
        if self.failures:
            self.failures -= 1
            raise EndpointConnectionError(endpoint_url="http://s3.invalid")
        self.objects[key] = data


class UnreachableRuns:
    """A runs table whose database does not answer."""

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        raise OSError("connection refused")
        yield

    async def stale(self, *, grace_seconds: float, limit: int) -> list[StaleRun]:
        raise OSError("connection refused")


@dataclass
class Fakes:
    """One agent process's outside world, in memory. ``runs`` is the shared database: another
    process on it is another ``build`` over ``ports()`` (see conftest's Harness)."""

    clock: FakeClock = field(default_factory=FakeClock)
    runs: InMemoryRuns = field(init=False)
    staging: InMemoryStaging | S3Outage = field(default_factory=InMemoryStaging)
    provider: ModelProvider = field(default_factory=lambda: RecordingProvider(ScriptedProvider()))
    tools: Mapping[str, Tool] = field(default_factory=lambda: TOOLS)

    def __post_init__(self) -> None:
        self.runs = InMemoryRuns(self.clock)

    def ports(self) -> Ports:
        return Ports(
            runs=self.runs,
            staging=self.staging,
            provider=self.provider,
            tools=self.tools,
            clock=self.clock,
            sleep=self.clock.sleep,
        )
