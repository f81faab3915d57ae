"""In-memory fakes for the artifacts service's ports (artifacts.ports), bundled by ``Fakes``:
the same behaviour as PostgreSQL and S3 where the use cases can tell, no I/O."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlencode
from uuid import UUID

from artifacts.models import Artifact, ArtifactStatus, ObjectDigest
from artifacts.ports import Ports
from relay_shared.events import DomainEvent


@dataclass
class StoredObject:
    body: bytes
    content_type: str = "application/octet-stream"
    checksummed: bool = True  # uploaded with a SHA-256 checksum, which S3 keeps


class InMemoryObjectStore:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], StoredObject] = {}

    def put(
        self,
        bucket: str,
        key: str,
        body: bytes,
        content_type: str = "text/plain",
        *,
        checksummed: bool = True,
    ) -> None:
        self.objects[bucket, key] = StoredObject(body, content_type, checksummed)

    async def describe(self, bucket: str, key: str) -> ObjectDigest | None:
        stored = self.objects.get((bucket, key))
        if stored is None:
            return None
        sha256 = hashlib.sha256(stored.body).hexdigest() if stored.checksummed else None
        return ObjectDigest(size=len(stored.body), sha256=sha256)


class InMemoryDownloadLinks:
    async def presign(
        self, bucket: str, key: str, *, filename: str, content_type: str, expires_in: int
    ) -> str:
        query = urlencode({"filename": filename, "type": content_type, "expires": expires_in})
        return f"memory://{bucket}/{key}?{query}"


class InMemoryArtifacts:
    """Records, inbox and outbox; a transaction's writes land only when it ends without error."""

    def __init__(self) -> None:
        self.records: dict[UUID, Artifact] = {}
        self.inbox: set[UUID] = set()
        self.outbox: dict[UUID, DomainEvent] = {}

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_MemoryTransaction]:
        tx = _MemoryTransaction(self)
        yield tx
        self.records.update(tx.records)
        self.inbox |= tx.inbox
        for event_id, event in tx.outbox.items():
            self.outbox.setdefault(event_id, event)

    async def find(self, artifact_id: UUID) -> Artifact | None:
        return self.records.get(artifact_id)

    async def published_for_task(self, tenant_id: str, task_id: UUID) -> list[Artifact]:
        found = [a for a in self.records.values() if _visible(a, tenant_id, task_id)]
        return sorted(found, key=lambda a: (a.created_at, a.id))

    async def published(self, tenant_id: str, task_id: UUID, artifact_id: UUID) -> Artifact | None:
        artifact = self.records.get(artifact_id)
        return artifact if artifact and _visible(artifact, tenant_id, task_id) else None


def _visible(artifact: Artifact, tenant_id: str, task_id: UUID) -> bool:
    return (
        artifact.status is ArtifactStatus.PUBLISHED
        and artifact.tenant_id == tenant_id
        and artifact.task_id == task_id
    )


class _MemoryTransaction:
    def __init__(self, store: InMemoryArtifacts) -> None:
        self._store = store
        self.records: dict[UUID, Artifact] = {}
        self.inbox: set[UUID] = set()
        self.outbox: dict[UUID, DomainEvent] = {}

    async def claim(self, event: DomainEvent) -> bool:
        event_id = event.metadata.event_id
        if event_id in self._store.inbox or event_id in self.inbox:
            return False
        self.inbox.add(event_id)
        return True

    async def lock_artifact(self, artifact_id: UUID) -> Artifact | None:
        return self._current(artifact_id)

    async def record(self, artifact: Artifact) -> bool:
        # the same guard as the SQL upsert: only published may replace rejected, same task
        current = self._current(artifact.id)
        if current is not None and not (
            current.status is ArtifactStatus.REJECTED
            and artifact.status is ArtifactStatus.PUBLISHED
            and (current.tenant_id, current.task_id) == (artifact.tenant_id, artifact.task_id)
        ):
            return False
        self.records[artifact.id] = artifact
        return True

    async def announce(self, event: DomainEvent) -> None:
        self.outbox.setdefault(event.metadata.event_id, event)

    def _current(self, artifact_id: UUID) -> Artifact | None:
        return self.records.get(artifact_id) or self._store.records.get(artifact_id)


@dataclass
class Fakes:
    """One of each fake; ``ports()`` is the service's whole outside world, in memory."""

    artifacts: InMemoryArtifacts = field(default_factory=InMemoryArtifacts)
    objects: InMemoryObjectStore = field(default_factory=InMemoryObjectStore)
    links: InMemoryDownloadLinks = field(default_factory=InMemoryDownloadLinks)

    def ports(self) -> Ports:
        return Ports(artifacts=self.artifacts, objects=self.objects, links=self.links)
