"""The agent built through its seam on the fakes (fakes.py): ``fakes``, the ``agent_app``, and
``harness`` for tests of the use cases without HTTP (one process, or several on one runs table)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi import FastAPI

from agent.app import build, create_app
from agent.ports import ModelProvider
from agent.service import AgentService
from agent.settings import AgentSettings
from agent.tools import TOOLS, Tool
from relay_shared.composition import given
from relay_shared.events import (
    TaskCancelRequested,
    TaskCancelRequestedData,
    TaskLimits,
    TaskSubmitted,
    TaskSubmittedData,
)

from .fakes import BlockedProvider, FakeClock, Fakes, InMemoryRuns, RecordingProvider


def submitted(
    prompt: str = "Write a report",
    *,
    task_id: UUID | None = None,
    model: str = "scripted",
    limits: TaskLimits | None = None,
) -> TaskSubmitted:
    return TaskSubmitted.create(
        TaskSubmittedData(prompt=prompt, model=model, limits=limits),
        tenant_id="acme",
        task_id=task_id or uuid.uuid4(),
    )


def cancel_requested(task_id: UUID, reason: str | None = "changed my mind") -> TaskCancelRequested:
    return TaskCancelRequested.create(
        TaskCancelRequestedData(reason=reason), tenant_id="acme", task_id=task_id
    )


class Harness:
    """One agent process (``service``) built on ``fakes``; ``replica`` builds another on the
    same runs table, as a second process on the same database would be."""

    def __init__(self, settings: AgentSettings, fakes: Fakes) -> None:
        self.settings = settings
        self.fakes = fakes
        self.service = self.replica(fakes.provider, settings.worker_id)

    @property
    def clock(self) -> FakeClock:
        return self.fakes.clock

    @property
    def runs(self) -> InMemoryRuns:
        return self.fakes.runs

    @property
    def staging(self) -> Any:
        return self.fakes.staging

    def replica(self, provider: ModelProvider, worker_id: str) -> AgentService:
        """Another agent process on the same database."""
        settings = self.settings.model_copy(update={"worker_id": worker_id})
        service = build(settings, dataclasses.replace(self.fakes.ports(), provider=provider))
        # what the process's cancel listener does when the NOTIFY arrives
        self.runs.listeners.append(service.running.cancel)
        return service


@pytest.fixture
def agent_settings(tmp_path: Path) -> AgentSettings:
    return AgentSettings(env="unit", worker_id="worker-1", workspace_root=tmp_path / "workspaces")


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


@pytest.fixture
def agent_app(agent_settings: AgentSettings, fakes: Fakes) -> FastAPI:
    return create_app(agent_settings, ports=given(fakes.ports()))


@pytest.fixture
def harness(agent_settings: AgentSettings, fakes: Fakes) -> Callable[..., Harness]:
    def build_on(
        provider: ModelProvider, *, tools: Mapping[str, Tool] = TOOLS, **overrides: Any
    ) -> Harness:
        settings = agent_settings.model_copy(update=overrides) if overrides else agent_settings
        fakes.provider, fakes.tools = provider, tools
        return Harness(settings, fakes)

    return build_on


@pytest.fixture
def make_submitted() -> Callable[..., TaskSubmitted]:
    return submitted


@pytest.fixture
def make_cancel() -> Callable[..., TaskCancelRequested]:
    return cancel_requested


@pytest.fixture
def recording() -> type[RecordingProvider]:
    return RecordingProvider


@pytest.fixture
def blocked() -> type[BlockedProvider]:
    return BlockedProvider
