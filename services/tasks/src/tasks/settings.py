"""The tasks service's settings (environment variables ``RELAY_*``; see README.md)."""

from __future__ import annotations

from pydantic import Field

from relay_shared.settings import ServiceSettings


class TasksSettings(ServiceSettings):
    service_name: str = "tasks"
    http_port: int = Field(default=8101, ge=1, le=65535)

    default_model: str = Field(
        default="claude-sonnet-4-5",
        min_length=1,
        max_length=200,
        description="Model for a task submitted without one.",
    )
    max_prompt_chars: int = Field(
        default=32000, ge=1, description="Longest prompt accepted, in characters."
    )
    idempotency_ttl_hours: float = Field(
        default=24.0,
        gt=0,
        description="How long an Idempotency-Key answers with its task; then it may be reused.",
    )
