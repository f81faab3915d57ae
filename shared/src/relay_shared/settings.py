"""Settings every service reads from the environment.

Each service subclasses ``ServiceSettings`` with its own fields. Names are ``RELAY_*`` except the
two connection strings, which also answer to the conventional ``DATABASE_URL`` and ``REDIS_URL``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    # An empty variable means "not set": compose files and env files write `NAME=` for a value
    # left to its default (an empty ANTHROPIC_API_KEY must not choose the anthropic provider).
    model_config = SettingsConfigDict(
        env_prefix="RELAY_", extra="ignore", frozen=True, env_ignore_empty=True
    )

    service_name: str = Field(description="This service's name; fixed by each service.")
    env: str = Field(default="local", description="Deployment name; part of AWS resource names.")
    log_level: str = "INFO"
    http_host: str = Field(default="127.0.0.1", description="0.0.0.0 in containers.")
    http_port: int = Field(default=8000, ge=1, le=65535)
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)
    http_keep_alive_seconds: int = Field(
        default=5,
        ge=1,
        description="An idle HTTP keep-alive connection is closed after this; behind a load"
        " balancer, set it above the balancer's idle timeout (Terraform does).",
    )
    ws_ping_interval_seconds: float = Field(
        default=15.0,
        gt=0,
        le=60,
        description="A WebSocket peer is pinged this often; one that does not answer within the"
        " same time is closed (1011).",
    )
    ws_send_queue_frames: int = Field(
        default=100,
        ge=1,
        description="Frames waiting for a WebSocket peer's reader; when the queue stays full for"
        " RELAY_WS_SEND_TIMEOUT_SECONDS, the connection closes (1013).",
    )
    ws_send_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="A WebSocket peer whose send queue stays full this long is closed (1013).",
    )
    ws_max_subscriptions: int = Field(
        default=100,
        ge=1,
        description="Subscriptions one live connection may hold at once (`*` counts as one).",
    )
    gc_young_threshold: int = Field(
        default=10_000,
        ge=0,
        description="Allocations between two young garbage collections (Python's default is"
        " 700). Fewer young collections promote fewer short-lived objects to the old"
        " generation, whose full collections walk every open connection's objects and pause a"
        " process holding a thousand streams for 100-300 ms. 0 keeps Python's default.",
    )
    ws_max_message_bytes: int = Field(
        default=16384,
        ge=256,
        description="Largest WebSocket message a peer may send; a larger one closes with 1009.",
    )

    database_url: SecretStr = Field(
        default=SecretStr("postgresql://postgres@127.0.0.1:5432/relay"),
        validation_alias=AliasChoices("RELAY_DATABASE_URL", "DATABASE_URL"),
    )
    db_schema: str = Field(default="", description="Defaults to the service name.")
    db_pool_max: int = Field(default=10, ge=1)
    db_acquire_timeout: float = Field(default=5.0, gt=0, description="Wait for a connection.")
    db_connect_timeout: float = Field(
        default=5.0, gt=0, description="Seconds to open a new PostgreSQL connection."
    )

    aws_region: str = Field(
        default="us-east-1", validation_alias=AliasChoices("RELAY_AWS_REGION", "AWS_REGION")
    )
    aws_endpoint_url: str | None = Field(
        default=None, description="Set for moto server; unset on AWS."
    )
    event_bus_name: str = Field(default="", description="Defaults to relay-<env>.")
    queue_name: str = Field(default="", description="Defaults to relay-<env>-<service>.")
    control_queue_name: str = Field(
        default="", description="A service's control queue; defaults to <queue_name>-control."
    )

    # SQS consumer
    consumer_concurrency: int = Field(default=8, ge=1)
    consumer_wait_seconds: int = Field(default=20, ge=0, le=20)
    consumer_visibility_timeout: int = Field(default=60, ge=5)
    consumer_outage_delay_seconds: int = Field(
        default=30,
        ge=1,
        le=43200,
        description="A message whose handler met a dependency outage comes back after this.",
    )
    consumer_delete_linger_seconds: float = Field(
        default=0.5,
        ge=0,
        le=5,
        description="How long a handled message's delete waits for others to share its"
        " DeleteMessageBatch call (fewer SQS calls; a crash inside it redelivers what was"
        " handled, which the handlers' idempotence absorbs). 0: delete at once.",
    )
    consumer_max_deferrals: int = Field(
        default=1000,
        ge=0,
        description="A message deferred (sent again with a delay) more often than this is"
        " handled as a failure, which counts towards the queue's maxReceiveCount.",
    )

    # Outbox relay and housekeeping
    outbox_poll_interval: float = Field(default=1.0, gt=0)
    outbox_retention_hours: float = Field(
        default=24.0, gt=0, description="Published outbox rows are deleted after this long."
    )
    # Longer than the queues' 4-day message retention (contracts/routing.yaml), so a redelivered
    # event always finds its inbox row: the repeat stays a no-op.
    inbox_retention_days: float = Field(
        default=7.0, gt=4, description="Inbox rows are deleted after this long."
    )
    housekeeping_interval_seconds: float = Field(
        default=60.0, gt=0, description="How often old outbox/inbox rows go and the lag is checked."
    )
    outbox_lag_warn_seconds: float = Field(
        default=60.0, gt=0, description="Oldest unpublished row older than this: logged, flagged."
    )

    # Start-up and readiness
    startup_max_backoff_seconds: float = Field(
        default=30.0, gt=0, description="Longest wait between start-up attempts."
    )
    readiness_timeout_seconds: float = Field(
        default=2.0, gt=0, description="Each /readyz check gives up after this long."
    )

    # Logs and telemetry (docs/observability.md)
    log_format: Literal["json", "text"] = Field(
        default="json", description="json: one object per line (CloudWatch); text: for people."
    )
    log_prompt_chars: int = Field(
        default=200, ge=0, description="A prompt in a log line is cut to this many characters."
    )
    otlp_endpoint: str = Field(
        default="",
        description="OTLP/HTTP base URL (an ADOT collector: http://127.0.0.1:4318); spans and"
        " metrics go there when set.",
    )
    telemetry_dir: str = Field(
        default="",
        description="Without an OTLP endpoint: write spans and metrics as JSON lines here"
        " (the local stack's .relay/telemetry, read by `relay trace`).",
    )
    trace_sample_ratio: float = Field(
        default=1.0, ge=0, le=1, description="Share of new traces recorded (parents decide after)."
    )
    trace_sql: bool = Field(
        default=False,
        description="A span per SQL statement (its text, never its parameters). Off by default: "
        "it was a fifth of a service's CPU per request.",
    )
    metrics_interval_seconds: float = Field(
        default=60.0, gt=0, description="How often metrics are exported."
    )
    service_version: str = Field(
        default="", description="Reported as service.version; defaults to the package version."
    )

    # Internal service-to-service auth: base64url raw Ed25519 keys (internal_auth.py).
    internal_auth_public_key: SecretStr | None = Field(
        default=None,
        description="Public keys trusted for internal tokens: one base64url raw Ed25519 key, "
        "several separated by spaces or commas, or a JWKS document.",
    )
    internal_auth_private_key: SecretStr | None = None
    internal_token_ttl_seconds: int = Field(default=60, ge=5, le=3600)
    internal_auth_jwks_secret_id: str = Field(
        default="",
        description="A Secrets Manager secret holding a JWKS of further trusted public keys, "
        "re-read every internal_auth_key_refresh_seconds (key rotation without a restart).",
    )
    internal_auth_private_key_secret_id: str = Field(
        default="",
        description="The gateway only: the Secrets Manager secret of its signing key, re-read "
        "every internal_auth_key_refresh_seconds; a new key there is used from then on.",
    )
    internal_auth_key_refresh_seconds: float = Field(
        default=60.0, gt=0, description="How often those two secrets are re-read."
    )

    @model_validator(mode="after")
    def _derive_names(self) -> ServiceSettings:
        # frozen model: fill derived defaults through object.__setattr__ once, at construction
        if not self.db_schema:
            object.__setattr__(self, "db_schema", self.service_name)
        if not self.event_bus_name:
            object.__setattr__(self, "event_bus_name", f"relay-{self.env}")
        if not self.queue_name:
            object.__setattr__(self, "queue_name", f"relay-{self.env}-{self.service_name}")
        if not self.control_queue_name:
            object.__setattr__(self, "control_queue_name", f"{self.queue_name}-control")
        return self
