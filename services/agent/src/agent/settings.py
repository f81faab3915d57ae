"""The agent's settings: the kit's, plus the model provider, the workspace and the run limits."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from pydantic import Field, model_validator

from agent.providers.config import ProviderSettings
from relay_shared.settings import ServiceSettings

MIB = 1024 * 1024


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class AgentSettings(ProviderSettings, ServiceSettings):
    service_name: str = "agent"
    http_port: int = Field(default=8102, ge=1, le=65535)
    # A run holds its message for minutes; a few at a time keeps one worker's model calls sane.
    consumer_concurrency: int = Field(default=4, ge=1)
    # Matches the queue's visibility timeout (contracts/routing.yaml); the consumer's heartbeat
    # extends it by this much while a run is in progress.
    consumer_visibility_timeout: int = Field(default=120, ge=5)

    llm_provider: str = Field(default="scripted", description="Model provider by name.")
    model_max_tokens: int = Field(default=4096, ge=1, description="max_tokens per model reply.")
    max_turns: int = Field(default=50, ge=1, description="Model replies allowed per attempt.")
    worker_id: str = Field(default_factory=default_worker_id)
    workspace_root: Path | None = Field(
        default=None, description="Parent of per-run workspaces; a temp dir when unset."
    )
    max_file_bytes: int = Field(default=10 * MIB, ge=1)
    artifacts_bucket: str = Field(default="", description="Defaults to relay-<env>-artifacts.")

    @model_validator(mode="after")
    def _derive_bucket(self) -> AgentSettings:
        # frozen model: fill the derived default once, at construction, like the kit does
        if not self.artifacts_bucket:
            object.__setattr__(self, "artifacts_bucket", f"relay-{self.env}-artifacts")
        return self
