"""The service's records, and the Artifact JSON it answers with (a contract with the gateway)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Self
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict


@dataclass(frozen=True)
class ObjectDigest:
    """What an uploaded object's bytes are, as the object store vouches for them."""

    size: int
    sha256: str | None  # hex; None when the object was stored without a SHA-256 checksum


class ArtifactStatus(StrEnum):
    PUBLISHED = "published"
    REJECTED = "rejected"


class Artifact(BaseModel):
    """One verified upload, as recorded: published (downloadable) or rejected (with the reason)."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    tenant_id: str
    task_id: UUID
    name: str
    content_type: str
    size: int
    sha256: str
    status: ArtifactStatus
    staging_key: str
    object_key: str | None = None
    rejection_reason: str | None = None
    created_at: AwareDatetime

    @property
    def filename(self) -> str:
        """What a browser should save it as: the last path segment of its name."""
        return self.name.rsplit("/", 1)[-1]


class ArtifactView(BaseModel):
    """Artifact JSON: the shape the gateway passes through to clients."""

    id: UUID
    task_id: UUID
    name: str
    content_type: str
    size: int
    sha256: str
    created_at: datetime

    @classmethod
    def of(cls, artifact: Artifact) -> Self:
        return cls(
            id=artifact.id,
            task_id=artifact.task_id,
            name=artifact.name,
            content_type=artifact.content_type,
            size=artifact.size,
            sha256=artifact.sha256,
            created_at=artifact.created_at,
        )


class ArtifactList(BaseModel):
    items: list[ArtifactView]


class ArtifactDownloadView(ArtifactView):
    """Artifact JSON plus a short-lived presigned URL for the bytes."""

    download_url: str
    download_url_expires_at: datetime
