"""The gateway's settings (environment variables ``RELAY_*``; see README.md)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator

from gateway.rate_limits import TenantLimits
from relay_shared.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    service_name: str = "gateway"
    http_port: int = Field(default=8000, ge=1, le=65535)

    tasks_url: str = Field(
        default="http://127.0.0.1:8101", description="Base URL of the tasks service."
    )
    artifacts_url: str = Field(
        default="http://127.0.0.1:8104", description="Base URL of the artifacts service."
    )
    notifier_url: str = Field(
        default="http://127.0.0.1:8103", description="Base URL of the notifier service."
    )
    upstream_connect_timeout: float = Field(
        default=3.0, gt=0, description="Seconds to connect to an internal service."
    )
    upstream_timeout: float = Field(
        default=15.0,
        gt=0,
        description="Seconds an internal call may take to answer (event streams have no limit).",
    )
    upstream_keep_alive_seconds: float = Field(
        default=2.0,
        gt=0,
        description="An idle connection to an internal service is reused for this long; keep it"
        " below the services' RELAY_HTTP_KEEP_ALIVE_SECONDS, or a request can go out on a"
        " connection the service is closing at that moment (a spurious 503).",
    )
    max_body_bytes: int = Field(
        default=65536, ge=1, description="Largest request body accepted; larger answers 413."
    )
    redis_url: SecretStr = Field(
        default=SecretStr("redis://127.0.0.1:6379/0"),
        validation_alias=AliasChoices("RELAY_REDIS_URL", "REDIS_URL"),
        description="Tickets for live connections (stored hashed, with a TTL).",
    )
    ws_ticket_ttl_seconds: int = Field(
        default=30, ge=5, le=300, description="How long a ticket from POST /v1/ws-tickets lasts."
    )
    rate_limits_enabled: bool = Field(
        default=True,
        description="Enforce the per-tenant request and submit rates (false: no limits, no "
        "RateLimit headers).",
    )
    rate_limit_requests_per_second: float = Field(
        default=50.0, gt=0, description="Requests per second per tenant (every /v1 request)."
    )
    rate_limit_requests_burst: int = Field(
        default=100, ge=1, description="Requests a tenant may make at once before the rate."
    )
    rate_limit_submits_per_second: float = Field(
        default=10.0, gt=0, description="Task submissions (POST /v1/tasks) per second per tenant."
    )
    rate_limit_submits_burst: int = Field(
        default=50, ge=1, description="Submissions a tenant may make at once before the rate."
    )
    api_key_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long a gateway process remembers what an API key is (its tenant, or "
        "that it is unknown): a revoked or expired key stops working within this time. 0: "
        "looked up on every request.",
    )
    rate_limit_overrides_ttl_seconds: float = Field(
        default=10.0,
        ge=0,
        description="How long a tenant's overrides (relay admin set-limits) are cached.",
    )
    rate_limit_redis_timeout_seconds: float = Field(
        default=0.25,
        gt=0,
        description="Connect and read timeout of the rate limiter's Redis calls; past it the "
        "request is served without limits.",
    )
    quota_active_tasks: int = Field(
        default=100,
        ge=0,
        description="Unfinished tasks a tenant may have at once; a submit over it is refused "
        "(429, limit active_tasks). 0: no quota.",
    )
    quota_daily_spend_usd: float = Field(
        default=0.0,
        ge=0,
        description="Estimated model cost (USD) of a tenant's tasks submitted since 00:00 UTC past "
        "which submits are refused until the next day (429, limit daily_spend). 0: no quota.",
    )
    quota_daily_tokens: int = Field(
        default=0,
        ge=0,
        description="Tokens (input, output and cache) of a tenant's tasks submitted since 00:00 "
        "UTC past which submits are refused until the next day (429, limit daily_tokens). 0: no "
        "quota.",
    )
    public_api_docs: bool = Field(
        default=True,
        description="Serve the API's docs (/docs, /openapi.json); false: both answer 404 "
        "(Terraform sets it from public_api_docs).",
    )
    console_dir: Path | None = Field(
        default=None,
        description="The built web console (console/dist), served at /console/; unset: /console "
        "answers 404.",
    )
    console_storage_origin: str = Field(
        default="",
        description="Origins (space-separated) of artifact download links (S3; moto locally): the "
        "console's Content-Security-Policy lets it preview artifacts from there.",
    )

    @field_validator("console_storage_origin")
    @classmethod
    def _origins(cls, value: str) -> str:
        for origin in value.split():
            parts = urlsplit(origin)
            if (
                parts.scheme not in {"http", "https"}
                or not parts.hostname
                or parts.username is not None
                or origin != f"{parts.scheme}://{parts.netloc}"
                or not all(c.isalnum() or c in ".-:[]" for c in parts.netloc)
            ):
                raise ValueError(
                    f"{origin!r} is not an origin: scheme://host[:port], e.g. "
                    "https://relay-prod-artifacts.s3.eu-west-1.amazonaws.com"
                )
        return " ".join(value.split())

    @property
    def rate_limit_defaults(self) -> TenantLimits:
        return TenantLimits(
            requests_per_second=self.rate_limit_requests_per_second,
            requests_burst=self.rate_limit_requests_burst,
            submits_per_second=self.rate_limit_submits_per_second,
            submits_burst=self.rate_limit_submits_burst,
            active_tasks=self.quota_active_tasks,
            daily_spend_usd=self.quota_daily_spend_usd,
            daily_tokens=self.quota_daily_tokens,
        )

    @property
    def console_storage_origins(self) -> tuple[str, ...]:
        return tuple(self.console_storage_origin.split())
