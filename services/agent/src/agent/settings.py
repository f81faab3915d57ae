"""The agent's settings: the kit's, plus the model provider, the workspace, budgets, retries
and leases."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from pydantic import Field, model_validator

from agent.pricing import ModelPrice
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

    model_max_tokens: int = Field(default=4096, ge=1, description="max_tokens per model reply.")

    # Budgets of a task whose task.submitted carries no limits (the tasks service fills them).
    default_max_turns: int = Field(default=50, ge=1)
    default_max_output_tokens: int = Field(default=32000, ge=1)
    default_max_wall_seconds: float = Field(default=1800, gt=0)
    default_max_wait_seconds: float = Field(
        default=86400, gt=0, description="How long a task waits for an answer unless it says."
    )
    model_prices: dict[str, ModelPrice] = Field(
        default_factory=dict, description="JSON; replaces the price table's entry per model."
    )

    # Retries of a failed model call (rate limits, overload, 5xx, dropped connections).
    provider_max_retries: int = Field(default=5, ge=0)
    provider_retry_base_seconds: float = Field(default=1.0, gt=0)
    provider_retry_max_seconds: float = Field(default=30.0, gt=0)

    # A run's lease: renewed every third of it; a run whose holder stopped renewing is taken
    # over when it expires. Below the visibility timeout, so a redelivery finds it expired.
    run_lease_seconds: float = Field(default=60.0, ge=0.3)
    worker_id: str = Field(default_factory=default_worker_id)

    # Recovery of runs whose worker died and whose task.submitted is gone (e.g. the queue was
    # lost): a sweeper re-runs them. The grace leaves the normal redelivery time to come first.
    recovery_interval_seconds: float = Field(default=15.0, gt=0)
    recovery_grace_seconds: float = Field(default=60.0, ge=0)
    recovery_concurrency: int = Field(
        default=1, ge=0, description="Recovered runs at a time per process; 0 turns it off."
    )
    recovery_max_attempts: int = Field(
        default=10, ge=1, description="A stale run with this many attempts is failed instead."
    )
    workspace_root: Path | None = Field(
        default=None, description="Parent of per-run workspaces; a temp dir when unset."
    )
    max_file_bytes: int = Field(default=10 * MIB, ge=1)
    checkpoint_max_bytes: int = Field(
        default=50 * MIB,
        ge=0,
        description="The most workspace a task waiting for input keeps in PostgreSQL; a"
        " question asked with more is refused (the model goes on without the answer).",
    )
    wait_expiry_interval_seconds: float = Field(
        default=15.0, gt=0, description="How often waits past max_wait_seconds are failed."
    )
    artifacts_bucket: str = Field(default="", description="Defaults to relay-<env>-artifacts.")

    @model_validator(mode="after")
    def _lease_below_visibility(self) -> AgentSettings:
        if self.run_lease_seconds >= self.consumer_visibility_timeout:
            raise ValueError(
                f"RELAY_RUN_LEASE_SECONDS ({self.run_lease_seconds:g}) must stay below"
                f" RELAY_CONSUMER_VISIBILITY_TIMEOUT ({self.consumer_visibility_timeout}): a"
                " message redelivered after its worker died must find the lease expired"
            )
        return self

    @model_validator(mode="after")
    def _derive_bucket(self) -> AgentSettings:
        # frozen model: fill the derived default once, at construction, like the kit does
        if not self.artifacts_bucket:
            object.__setattr__(self, "artifacts_bucket", f"relay-{self.env}-artifacts")
        return self
