"""The artifacts service's settings (environment ``RELAY_*``; see README.md for the table)."""

from __future__ import annotations

from pydantic import Field, model_validator

from relay_shared.settings import ServiceSettings

# SigV4 presigned URLs are valid for at most seven days.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600


class ArtifactsSettings(ServiceSettings):
    service_name: str = "artifacts"
    http_port: int = Field(default=8104, ge=1, le=65535)

    artifacts_bucket: str = Field(default="", description="Defaults to relay-<env>-artifacts.")
    download_url_ttl_seconds: int = Field(default=300, ge=1, le=MAX_PRESIGN_SECONDS)
    s3_public_endpoint_url: str | None = Field(
        default=None,
        description="S3 endpoint written into download URLs, when clients reach S3 at another "
        "address than services do (e.g. moto seen from a host browser). Unset: the AWS endpoint.",
    )

    @model_validator(mode="after")
    def _derive_bucket(self) -> ArtifactsSettings:
        # frozen model: fill the derived default once, at construction (as the kit does)
        if not self.artifacts_bucket:
            object.__setattr__(self, "artifacts_bucket", f"relay-{self.env}-artifacts")
        return self
