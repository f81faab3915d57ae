"""In-memory collaborators for the agent, injected through the composition root."""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from agent.app import build_service
from agent.models import RunState
from agent.providers.base import ModelProvider, ModelReply, ModelRequest
from agent.service import AgentService
from agent.settings import AgentSettings
from relay_shared.events import DomainEvent, TaskSubmitted, TaskSubmittedData


class InMemoryRuns:
    """The runs table and the outbox, with commit-or-nothing transactions."""

    def __init__(self) -> None:
        self.rows: dict[UUID, dict[str, Any]] = {}
        self.events: list[DomainEvent] = []
        self.commits: list[list[DomainEvent]] = []  # the events of each committed transaction

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Transaction]:
        tx = _Transaction(copy.deepcopy(self.rows))
        yield tx
        self.rows = tx.rows
        self.events.extend(tx.events)
        if tx.events:
            self.commits.append(list(tx.events))

    def names(self) -> list[str]:
        return [e.name for e in self.events]


class _Transaction:
    def __init__(self, rows: dict[UUID, dict[str, Any]]) -> None:
        self.rows = rows
        self.events: list[DomainEvent] = []

    async def claim(self, task_id: UUID, tenant_id: str, worker_id: str) -> int | None:
        row = self.rows.get(task_id)
        if row is None:
            self.rows[task_id] = {"tenant_id": tenant_id, "status": "running", "attempt": 1}
            return 1
        if row["status"] != "running":
            return None
        row.update(attempt=row["attempt"] + 1, steps=0)
        return int(row["attempt"])

    async def save(self, state: RunState) -> bool:
        row = self.rows.get(state.task_id)
        if row is None or row["attempt"] != state.attempt or row["status"] != "running":
            return False
        row.update(status=state.status, steps=state.steps, usage=state.usage)
        return True

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


def submitted(prompt: str = "Write a report", *, task_id: UUID | None = None) -> TaskSubmitted:
    return TaskSubmitted.create(
        TaskSubmittedData(prompt=prompt, model="scripted"),
        tenant_id="acme",
        task_id=task_id or uuid.uuid4(),
    )


class Harness:
    def __init__(self, settings: AgentSettings, provider: ModelProvider) -> None:
        self.runs = InMemoryRuns()
        self.staging = InMemoryStaging()
        self.settings = settings
        self.service: AgentService = build_service(
            settings, runs=self.runs, staging=self.staging, provider=provider
        )


@pytest.fixture
def agent_settings(tmp_path: Path) -> AgentSettings:
    return AgentSettings(
        env="unit", worker_id="worker-1", workspace_root=tmp_path / "workspaces", max_turns=10
    )


@pytest.fixture
def harness(agent_settings: AgentSettings) -> Callable[..., Harness]:
    def build(provider: ModelProvider, **overrides: Any) -> Harness:
        settings = agent_settings.model_copy(update=overrides) if overrides else agent_settings
        return Harness(settings, provider)

    return build


@pytest.fixture
def make_submitted() -> Callable[..., TaskSubmitted]:
    return submitted


@pytest.fixture
def recording() -> type[RecordingProvider]:
    return RecordingProvider
