"""The notifier's settings: the kit's common ones plus Redis, hold and stream timings."""

from __future__ import annotations

from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from relay_shared.settings import ServiceSettings


class NotifierSettings(ServiceSettings):
    service_name: str = "notifier"
    http_port: int = Field(default=8103, ge=1, le=65535)

    redis_url: SecretStr = Field(
        default=SecretStr("redis://127.0.0.1:6379/0"),
        validation_alias=AliasChoices("RELAY_REDIS_URL", "REDIS_URL"),
        description="Live fan-out between replicas (pub/sub).",
    )
    timeline_hold_seconds: float = Field(
        default=90.0,
        gt=0,
        description="How long an event may wait for its predecessors before it is released: "
        "longer than the producers' queues can keep a predecessor back (their visibility "
        "timeout after a crash, their outage delay), or a late predecessor is overtaken.",
    )
    timeline_sweep_interval_seconds: float = Field(
        default=5.0, gt=0, description="How often held events are checked against the hold limit."
    )
    sse_heartbeat_seconds: float = Field(
        default=15.0, gt=0, description="Comment heartbeat interval on SSE streams."
    )
    sse_resync_seconds: float = Field(
        default=5.0,
        gt=0,
        description="An idle stream re-reads the timeline this often, in case a publish was lost.",
    )

    # --- the WebSocket API on the API Gateway edge (edge.py; ADR 0016) ---
    edge_connections_table: str | None = Field(
        default=None,
        description="DynamoDB table of the WebSocket API's connections and subscriptions. Set "
        "with RELAY_EDGE_WS_ENDPOINT on the API Gateway edge only; unset, the notifier serves "
        "live updates through the gateway's /v1/ws alone.",
    )
    edge_ws_endpoint: str | None = Field(
        default=None,
        description="The WebSocket API's management endpoint for PostToConnection: "
        "https://{api-id}.execute-api.{region}.amazonaws.com/{stage}.",
    )
    edge_resync_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How often every WebSocket API subscription is looked at for events not "
        "sent yet (a send whose trigger was lost, e.g. in a crash).",
    )

    # --- webhooks (DESIGN.md, *Webhooks*; ADR 0013) ---
    webhooks_encryption_keys: SecretStr | None = Field(
        default=None,
        description="Fernet keys (comma-separated, newest first) that encrypt endpoint secrets "
        "at rest: the first encrypts, all decrypt, so a new key is rolled in before the old "
        "one leaves. Unset: the webhook API answers 503 and nothing is delivered.",
    )
    webhooks_allow_private: bool = Field(
        default=False,
        description="Let endpoints resolve to loopback, private, link-local or metadata "
        "addresses (the local stack sets it; never in production).",
    )
    webhooks_retry_delays: Annotated[tuple[float, ...], NoDecode] = Field(
        default=(5, 60, 600, 3600, 21600, 86400),
        min_length=0,
        description="Seconds before each retry of a failed delivery (comma-separated); after "
        "the last one fails the delivery is `failed`.",
    )
    webhooks_timeout_seconds: float = Field(
        default=10.0, gt=0, description="An attempt's whole budget: connect, send, answer."
    )
    webhooks_concurrency: int = Field(
        default=32, ge=1, description="Attempts in flight at once, per replica."
    )
    webhooks_endpoint_concurrency: int = Field(
        default=4,
        ge=1,
        description="Attempts in flight to one endpoint, per replica: a slow endpoint holds "
        "no more than this many of the replica's attempts.",
    )
    webhooks_tenant_concurrency: int = Field(
        default=16,
        ge=1,
        description="Attempts in flight for one tenant's endpoints, per replica: keep it below "
        "RELAY_WEBHOOKS_CONCURRENCY so that one tenant's dead endpoints leave room for others.",
    )
    webhooks_disable_after_days: float = Field(
        default=5.0,
        gt=0,
        description="An endpoint failing every attempt this long is disabled (with the reason).",
    )
    webhooks_secret_overlap_seconds: float = Field(
        default=86400.0,
        ge=0,
        description="After a rotation the old secret keeps signing (a second signature) this long.",
    )
    webhooks_max_endpoints: int = Field(
        default=20, ge=1, description="Webhook endpoints one tenant may have."
    )
    webhooks_poll_interval_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often a replica looks for due deliveries (it also wakes at once for "
        "the events it appends itself).",
    )
    webhooks_retention_days: float = Field(
        default=7.0, gt=0, description="Finished deliveries are kept this long in the log."
    )

    @field_validator("webhooks_retry_delays", mode="before")
    @classmethod
    def _delays(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(float(part) for part in value.split(",") if part.strip())
        return value

    @field_validator("webhooks_retry_delays")
    @classmethod
    def _delays_not_negative(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(delay < 0 for delay in value):
            raise ValueError("retry delays are seconds, never negative")
        return value
