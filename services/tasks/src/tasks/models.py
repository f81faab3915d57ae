"""The tasks service's own models: the intake body, the task record and the JSON it answers with."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from relay_shared.events import Usage
from tasks.lifecycle import TaskState, TaskStatus

MAX_METADATA_KEYS = 16
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
MetadataValue = Annotated[str, StringConstraints(max_length=512)]
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class TaskRequest(BaseModel):
    """The body of ``POST /internal/tasks`` as the caller sent it.

    Parse it with ``TaskRequest.parse``: the prompt limit is a setting, so it reaches the
    validator through the validation context rather than the type.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str
    model: ModelName | None = None
    metadata: (
        Annotated[dict[MetadataKey, MetadataValue], Field(max_length=MAX_METADATA_KEYS)] | None
    ) = None

    @classmethod
    def parse(cls, body: bytes, *, max_prompt_chars: int) -> TaskRequest:
        return cls.model_validate_json(body, context={"max_prompt_chars": max_prompt_chars})

    @field_validator("prompt")
    @classmethod
    def _prompt_is_usable(cls, prompt: str, info: ValidationInfo) -> str:
        if not prompt.strip():
            raise ValueError("the prompt must not be blank")
        limit = (info.context or {}).get("max_prompt_chars")
        if limit is not None and len(prompt) > limit:
            raise ValueError(f"the prompt must be at most {limit} characters")
        return prompt

    def with_defaults(self, *, default_model: str) -> NewTask:
        return NewTask(
            prompt=self.prompt, model=self.model or default_model, metadata=self.metadata or {}
        )


class NewTask(BaseModel):
    """A validated submission with its defaults filled in: what gets stored and hashed."""

    model_config = ConfigDict(frozen=True)

    prompt: str
    model: str
    metadata: dict[str, str]

    def request_hash(self) -> str:
        """Equal for equal submissions, whatever their key order or spelt-out defaults."""
        canonical = json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Task:
    id: UUID
    tenant_id: str
    prompt: str
    model: str
    metadata: Mapping[str, str]
    created_at: datetime
    updated_at: datetime
    state: TaskState


class PagePosition(BaseModel):
    """Where a page of the newest-first task list ended: the last task's sort key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    created_at: AwareDatetime
    id: UUID


@dataclass(frozen=True)
class TaskPage:
    tasks: list[Task]
    next_cursor: str | None


# --- answers --------------------------------------------------------------------------------


class ErrorView(BaseModel):
    code: str
    message: str


class ResultView(BaseModel):
    summary: str


class TaskView(BaseModel):
    """Task JSON, the shape the gateway passes through to clients."""

    id: UUID
    status: TaskStatus
    prompt: str
    model: str
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    usage: Usage
    error: ErrorView | None
    result: ResultView | None

    @classmethod
    def of(cls, task: Task) -> TaskView:
        state = task.state
        return cls(
            id=task.id,
            status=state.status,
            prompt=task.prompt,
            model=task.model,
            metadata=dict(task.metadata),
            created_at=task.created_at,
            updated_at=task.updated_at,
            started_at=state.started_at,
            finished_at=state.finished_at,
            usage=state.usage,
            error=ErrorView(code=state.error.code, message=state.error.message)
            if state.error
            else None,
            result=ResultView(summary=state.summary) if state.summary is not None else None,
        )


class TaskPageView(BaseModel):
    items: list[TaskView]
    next_cursor: str | None

    @classmethod
    def of(cls, page: TaskPage) -> TaskPageView:
        return cls(items=[TaskView.of(t) for t in page.tasks], next_cursor=page.next_cursor)
