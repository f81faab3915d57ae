"""The agent's own records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from relay_shared.events import Usage

RunStatus = Literal["running", "succeeded", "failed", "cancelled"]


@dataclass(frozen=True)
class RunState:
    """What a ``runs`` row says about the attempt that owns it."""

    task_id: UUID
    attempt: int
    status: RunStatus
    steps: int
    usage: Usage
