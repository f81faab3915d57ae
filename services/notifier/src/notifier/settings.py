"""The notifier's settings: the kit's common ones plus Redis, hold and stream timings."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr

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
        default=30.0,
        gt=0,
        description="How long an event may wait for its predecessors before it is released.",
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
    ws_max_subscriptions: int = Field(
        default=100,
        ge=1,
        description="Subscriptions one live connection may hold at once (`*` counts as one).",
    )
