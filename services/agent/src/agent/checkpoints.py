"""A run that asked its client a question waits without a worker (ADR 0022). What it needs to go
on is saved with it: the conversation up to the question, the attempt's counters and the
workspace's files. Any worker resumes it from there once the answer comes.

The saved conversation ends with the assistant turn that called ``ask_user``. Resuming answers
that call: the next user turn holds the results of the reply's other tool calls (run before the
save) with the answer in the ``ask_user`` call's place, in call order, as the Messages API wants.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from relay_shared.events import TaskSubmittedData, Usage


class Question(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: UUID
    text: str
    tool_use_id: str  # the ask_user call the answer goes back to


class Checkpoint(BaseModel):
    """The conversation and counters of an attempt that stopped at a question (JSON in
    ``runs.checkpoint``)."""

    model_config = ConfigDict(frozen=True)

    question: Question
    step: int = Field(ge=1, description="The step whose reply asked.")
    messages: list[dict[str, Any]] = Field(description="Up to the reply that asked, inclusive.")
    results: list[dict[str, Any]] = Field(
        description="tool_result blocks of that reply, in call order, the ask's one left out."
    )
    ask_index: int = Field(ge=0, description="Where the answer goes among ``results``.")
    calls: int = Field(ge=0)
    usage: Usage
    cost_usd: float = Field(ge=0)
    artifact_ids: list[UUID]
    writes: dict[str, int] = Field(description="Writes so far per file name (artifact ids).")
    wall_used_seconds: float = Field(ge=0, description="Wall time spent working, not waiting.")

    def messages_with(self, answer: str) -> list[dict[str, Any]]:
        """The conversation to go on with: the saved one and the user turn that answers it."""
        answered = {
            "type": "tool_result",
            "tool_use_id": self.question.tool_use_id,
            "content": answer,
            "is_error": False,
        }
        results = [*self.results]
        results.insert(self.ask_index, answered)
        return [*self.messages, {"role": "user", "content": results}]

    def write_counts(self) -> Counter[str]:
        return Counter(self.writes)


@dataclass(frozen=True)
class Resumption:
    """What a claim of a run that waited and has its answer brings back, to go on from."""

    checkpoint: Checkpoint
    answer: str
    files: Mapping[str, bytes]
    submitted: TaskSubmittedData  # what the run was claimed with at first
