"""What the artifacts service needs from outside the process: the artifact records with their
inbox and outbox (PostgreSQL), the object store (S3) and the download link signer (S3 presign).
The composition root fills them with the production adapters, unit tests with the fakes in
tests/unit/fakes.py."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from artifacts.models import Artifact, ObjectDigest
from relay_shared.composition import Loops, no_loops
from relay_shared.events import DomainEvent


class ArtifactsTransaction(Protocol):
    """One unit of work: the inbox claim, the record and the announcement commit together."""

    async def claim(self, event: DomainEvent) -> bool:
        """Record the event in the inbox; False when it was handled before."""

    async def lock_artifact(self, artifact_id: UUID) -> Artifact | None:
        """Serialise every handler of this artifact id until commit; the record as it stands."""

    async def record(self, artifact: Artifact) -> bool:
        """Insert the record (or let a published one replace a rejected one); False if not."""

    async def announce(self, event: DomainEvent) -> None:
        """Publish ``event`` through the outbox when the transaction commits."""


class Artifacts(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[ArtifactsTransaction]: ...

    async def find(self, artifact_id: UUID) -> Artifact | None:
        """The record of any status and tenant: for deduplicating uploads only."""

    async def published_for_task(self, tenant_id: str, task_id: UUID) -> list[Artifact]:
        """The task's published artifacts, oldest first."""

    async def published(self, tenant_id: str, task_id: UUID, artifact_id: UUID) -> Artifact | None:
        """One published artifact of the tenant's task, or None."""


class ObjectStore(Protocol):
    async def describe(self, bucket: str, key: str) -> ObjectDigest | None:
        """The object's size and the SHA-256 S3 verified when it was uploaded (None when it was
        uploaded without one), without reading its bytes; None when there is no such object."""


class DownloadLinks(Protocol):
    async def presign(
        self, bucket: str, key: str, *, filename: str, content_type: str, expires_in: int
    ) -> str:
        """A URL that GETs the object as an attachment named ``filename``."""


@dataclass(frozen=True)
class Ports:
    """What the artifacts service needs from outside the process."""

    artifacts: Artifacts
    objects: ObjectStore
    links: DownloadLinks
    # what runs beside the HTTP server in production, given the built service: the SQS
    # consumer, the outbox relay and housekeeping
    loops: Loops = no_loops
