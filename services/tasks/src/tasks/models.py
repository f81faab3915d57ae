"""The tasks service's own models: the intake body, the task record and the JSON it answers with."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from relay_shared.events import TaskLimits, Usage
from tasks.lifecycle import TaskState, TaskStatus

MAX_METADATA_KEYS = 16
MAX_CANCEL_REASON_CHARS = 500


def storable_text(value: str) -> str:
    """``value``, if PostgreSQL can store it: its text and jsonb take neither a NUL (U+0000) nor
    a lone surrogate (not UTF-8), so either is a 422 rather than a failed insert. The gateway
    refuses both at the edge too; this is the service's own guard for its own API."""
    if "\x00" in value:
        raise PydanticCustomError("text_nul", "the text must not contain a NUL character (U+0000)")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise PydanticCustomError(
            "text_surrogate", "the text must not contain a lone surrogate (U+D800-U+DFFF)"
        ) from None
    return value


# Every string a caller sends that may be stored. STORABLE goes last in an ``Annotated``, after
# any length limit (a limit after it is checked as a generic one, whose error counts "items").
STORABLE = AfterValidator(storable_text)
Text = Annotated[str, STORABLE]
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=64), STORABLE]
MetadataValue = Annotated[str, StringConstraints(max_length=512), STORABLE]
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=200), STORABLE]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]

# The least a task may ask for of each budget; the most is a setting (RELAY_LIMIT_*).
LIMIT_MINIMA: Mapping[str, float] = {
    "max_turns": 1,
    "max_output_tokens": 1,
    "max_wall_seconds": 1.0,
    "max_cost_usd": 0.01,
    "max_wait_seconds": 1.0,
}
LimitRanges = Mapping[str, tuple[float, float]]  # budget -> (least, most) a task may ask for


@dataclass(frozen=True)
class IntakeRules:
    """What a submission must keep to and what it gets for what it leaves out (from settings)."""

    max_prompt_chars: int
    allowed_models: tuple[str, ...]
    default_model: str
    default_limits: TaskLimits
    limit_ranges: LimitRanges


def _rules(info: ValidationInfo) -> IntakeRules | None:
    rules = (info.context or {}).get("rules")
    return rules if isinstance(rules, IntakeRules) else None


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class LimitsRequest(BaseModel):
    """The ``limits`` a caller asked for; each one left out gets its default.

    Strict: a count must be a JSON integer and a number a JSON number, never a string or a bool.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    max_turns: int | None = None
    max_output_tokens: int | None = None
    max_wall_seconds: FiniteFloat | None = None
    max_cost_usd: FiniteFloat | None = None
    max_wait_seconds: FiniteFloat | None = None

    @field_validator(
        "max_turns", "max_output_tokens", "max_wall_seconds", "max_cost_usd", "max_wait_seconds"
    )
    @classmethod
    def _within_range(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is None:
            return None
        rules = _rules(info)
        name = info.field_name or ""
        low, high = rules.limit_ranges[name] if rules else (LIMIT_MINIMA[name], math.inf)
        if not low <= value <= high:
            raise PydanticCustomError(
                "limit_out_of_range",
                "{limit} must be between {low} and {high}",
                {"limit": name, "low": _number(low), "high": _number(high)},
            )
        return value


class TaskRequest(BaseModel):
    """The body of ``POST /internal/tasks`` as the caller sent it.

    Parse it with ``TaskRequest.parse``: the prompt limit, the allowed models and the budget
    maxima are settings, so they reach the validators through the validation context.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: Text
    model: ModelName | None = None
    metadata: (
        Annotated[dict[MetadataKey, MetadataValue], Field(max_length=MAX_METADATA_KEYS)] | None
    ) = None
    limits: LimitsRequest | None = None

    @classmethod
    def parse(cls, body: bytes, rules: IntakeRules) -> TaskRequest:
        return cls.model_validate_json(body, context={"rules": rules})

    @field_validator("prompt")
    @classmethod
    def _prompt_is_usable(cls, prompt: str, info: ValidationInfo) -> str:
        if not prompt.strip():
            raise ValueError("the prompt must not be blank")
        rules = _rules(info)
        if rules is not None and len(prompt) > rules.max_prompt_chars:
            raise ValueError(f"the prompt must be at most {rules.max_prompt_chars} characters")
        return prompt

    @field_validator("model")
    @classmethod
    def _model_is_allowed(cls, model: str | None, info: ValidationInfo) -> str | None:
        rules = _rules(info)
        if model is not None and rules is not None and model not in rules.allowed_models:
            raise PydanticCustomError(
                "model_not_allowed",
                "unknown model; allowed: {allowed}",
                {"allowed": ", ".join(rules.allowed_models)},
            )
        return model

    def with_defaults(self, rules: IntakeRules) -> NewTask:
        asked = self.limits.model_dump(exclude_none=True) if self.limits else {}
        return NewTask(
            prompt=self.prompt,
            model=self.model or rules.default_model,
            metadata=self.metadata or {},
            limits=TaskLimits(**(rules.default_limits.model_dump() | asked)),
        )


class NewTask(BaseModel):
    """A validated submission with its defaults filled in: what gets stored, hashed and sent."""

    model_config = ConfigDict(frozen=True)

    prompt: str
    model: str
    metadata: dict[str, str]
    limits: TaskLimits  # the effective limits: the defaults with the caller's choices on top

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
    limits: TaskLimits | None  # None only for tasks stored before budgets existed
    created_at: datetime
    updated_at: datetime
    state: TaskState


class CancelRequest(BaseModel):
    """The optional body of ``POST /internal/tasks/{id}/cancel``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: (
        Annotated[str, StringConstraints(max_length=MAX_CANCEL_REASON_CHARS), STORABLE] | None
    ) = None

    @classmethod
    def parse(cls, body: bytes) -> CancelRequest:
        # no body at all is the common case: a cancel needs no reason
        return cls.model_validate_json(body) if body.strip() else cls()


class InputRequest(BaseModel):
    """The body of ``POST /internal/tasks/{id}/input``: the answer to the pending question.

    Parse it with ``InputRequest.parse``: the length limit is a setting, and a text over it is
    413 (``AnswerTooLarge``), not 422.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: Text
    question_id: UUID | None = None  # when given, it must be the question the task waits on

    @classmethod
    def parse(cls, body: bytes) -> InputRequest:
        return cls.model_validate_json(body)

    @field_validator("text")
    @classmethod
    def _text_is_usable(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("the answer must not be blank")
        return text


class PagePosition(BaseModel):
    """Where a page of the newest-first task list ended: the last task's sort key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    created_at: AwareDatetime
    id: UUID


@dataclass(frozen=True)
class Quota:
    """A tenant's quotas, as the gateway sends them with a submit (DESIGN.md, *Limits and
    quotas*); None = no such quota."""

    active_tasks: int | None = None
    daily_spend_usd: float | None = None
    daily_tokens: int | None = None

    @property
    def any(self) -> bool:
        return (self.active_tasks, self.daily_spend_usd, self.daily_tokens) != (None, None, None)


@dataclass(frozen=True)
class TenantUsage:
    """What a tenant has now: tasks not yet finished; estimated cost and tokens of the tasks it
    submitted since 00:00 UTC; and seconds until the next 00:00 UTC, when that starts again."""

    active_tasks: int
    spend_usd: float
    tokens: int
    seconds_left_today: float


@dataclass(frozen=True)
class IdempotencyRecord:
    """What an Idempotency-Key answers with: the submission it was first used for."""

    request_hash: str
    task_id: UUID


@dataclass(frozen=True)
class IdempotencyClaim:
    """An Idempotency-Key to remember with the task it creates, until ``ttl`` from now."""

    key: str
    request_hash: str
    ttl: timedelta


@dataclass(frozen=True)
class TaskPage:
    tasks: list[Task]
    next_cursor: str | None


# --- answers --------------------------------------------------------------------------------


class ErrorView(BaseModel):
    code: str
    message: str
    budget: str | None  # with code budget_exceeded: the limit the task ran into


class UsageView(Usage):
    cost_usd: float  # estimated, from the agent's price table


class ResultView(BaseModel):
    summary: str


class QuestionView(BaseModel):
    """The question a ``waiting_for_input`` task asks; answer it with POST .../input."""

    id: UUID
    text: str
    asked_at: datetime


class TaskView(BaseModel):
    """Task JSON, the shape the gateway passes through to clients."""

    id: UUID
    status: TaskStatus
    prompt: str
    model: str
    metadata: dict[str, str]
    limits: TaskLimits | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    usage: UsageView
    error: ErrorView | None
    result: ResultView | None
    question: QuestionView | None = None  # set while the task is waiting_for_input

    @classmethod
    def of(cls, task: Task) -> TaskView:
        state = task.state
        return cls(
            id=task.id,
            status=state.status,
            prompt=task.prompt,
            model=task.model,
            metadata=dict(task.metadata),
            limits=task.limits,
            created_at=task.created_at,
            updated_at=task.updated_at,
            started_at=state.started_at,
            finished_at=state.finished_at,
            usage=UsageView(**state.usage.model_dump(), cost_usd=state.cost_usd),
            error=ErrorView(
                code=state.error.code, message=state.error.message, budget=state.error.budget
            )
            if state.error
            else None,
            result=ResultView(summary=state.summary) if state.summary is not None else None,
            question=QuestionView(
                id=state.question.id, text=state.question.text, asked_at=state.question.asked_at
            )
            if state.question
            else None,
        )


class TaskPageView(BaseModel):
    items: list[TaskView]
    next_cursor: str | None

    @classmethod
    def of(cls, page: TaskPage) -> TaskPageView:
        return cls(items=[TaskView.of(t) for t in page.tasks], next_cursor=page.next_cursor)
