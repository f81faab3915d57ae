"""The tasks service's settings (environment variables ``RELAY_*``; see README.md)."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from relay_shared.events import TaskLimits
from relay_shared.settings import ServiceSettings
from tasks.models import LIMIT_MINIMA, LimitRanges


class TasksSettings(ServiceSettings):
    service_name: str = "tasks"
    http_port: int = Field(default=8101, ge=1, le=65535)

    allowed_models: Annotated[tuple[str, ...], NoDecode] = Field(
        default=("claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5"),
        min_length=1,
        description="Models a task may name (comma-separated in the environment).",
    )
    default_model: str = Field(
        default="claude-sonnet-4-5",
        min_length=1,
        max_length=200,
        description="Model for a task submitted without one; must be allowed.",
    )
    max_prompt_chars: int = Field(
        default=32000, ge=1, description="Longest prompt accepted, in characters."
    )
    idempotency_ttl_hours: float = Field(
        default=24.0,
        gt=0,
        description="How long an Idempotency-Key answers with its task; then it may be reused.",
    )

    # Budgets: what a task gets when it asks for nothing, and the most it may ask for.
    default_max_turns: int = 50
    limit_max_turns: int = 200
    default_max_output_tokens: int = 32000
    limit_max_output_tokens: int = 200000
    default_max_wall_seconds: float = 1800.0
    limit_max_wall_seconds: float = 21600.0
    default_max_cost_usd: float | None = Field(
        default=None, description="Unset: no cost limit unless the task asks for one."
    )
    limit_max_cost_usd: float = 100.0
    default_max_wait_seconds: float = Field(
        default=86400.0, description="How long a task waits for an answer unless it asks."
    )
    limit_max_wait_seconds: float = 7 * 86400.0
    max_input_chars: int = Field(
        default=16000, ge=1, description="The longest answer to a task's question (else 413)."
    )
    input_catch_up_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long an answer naming a question this service has not recorded yet "
        "(the timeline can show it a moment before) waits for it before a 409.",
    )

    @field_validator("allowed_models", mode="before")
    @classmethod
    def _split_models(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(name.strip() for name in value.split(",") if name.strip())
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        # Refuse to start rather than accept tasks that could never run or never be asked for.
        if self.default_model not in self.allowed_models:
            raise ValueError(
                f"RELAY_DEFAULT_MODEL {self.default_model!r} is not in RELAY_ALLOWED_MODELS "
                f"({', '.join(self.allowed_models)})"
            )
        for name, (low, high) in self.limit_ranges().items():
            default = getattr(self, f"default_{name}")
            if high < low:
                raise ValueError(f"RELAY_LIMIT_{name.upper()} must be at least {low}")
            if default is not None and not low <= default <= high:
                raise ValueError(
                    f"RELAY_DEFAULT_{name.upper()} must be between {low} and {high} "
                    f"(RELAY_LIMIT_{name.upper()})"
                )
        return self

    def default_limits(self) -> TaskLimits:
        return TaskLimits(
            max_turns=self.default_max_turns,
            max_output_tokens=self.default_max_output_tokens,
            max_wall_seconds=self.default_max_wall_seconds,
            max_cost_usd=self.default_max_cost_usd,
            max_wait_seconds=self.default_max_wait_seconds,
        )

    def limit_ranges(self) -> LimitRanges:
        maxima = {
            "max_turns": self.limit_max_turns,
            "max_output_tokens": self.limit_max_output_tokens,
            "max_wall_seconds": self.limit_max_wall_seconds,
            "max_cost_usd": self.limit_max_cost_usd,
            "max_wait_seconds": self.limit_max_wait_seconds,
        }
        return {name: (minimum, maxima[name]) for name, minimum in LIMIT_MINIMA.items()}
