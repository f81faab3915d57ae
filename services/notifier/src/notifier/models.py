"""The timeline event as clients see it (SSE ``data:``) and as replicas share it (Redis)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from relay_shared.events import TERMINAL_EVENTS


class TimelineEvent(BaseModel):
    """One appended event: ``{"type","seq","task_id","occurred_at","data","event_id"}``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    type: str = Field(description="The event name, e.g. 'task.progressed'.")
    seq: int = Field(ge=1, description="1..n within the task's timeline, no gaps.")
    task_id: UUID
    occurred_at: AwareDatetime
    data: dict[str, Any]
    event_id: UUID
    # Never part of the client JSON; carried so every reader can check the tenant.
    tenant_id: str = Field(exclude=True)

    @field_validator("occurred_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL_EVENTS

    def client_json(self) -> str:
        return self.model_dump_json()

    def live_message(self) -> str:
        """What goes on the Redis channel: the client JSON plus the owning tenant."""
        return json.dumps({**self.model_dump(mode="json"), "tenant_id": self.tenant_id})

    @classmethod
    def from_live_message(cls, text: str | bytes) -> TimelineEvent:
        return cls.model_validate_json(text)
