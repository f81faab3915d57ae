"""Verifying and publishing uploads, with the in-memory artifacts ledger and object store."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

import pytest

from artifacts.models import ArtifactStatus
from artifacts.service import ArtifactPublishing, ArtifactService, StagingObjectMissing
from relay_shared.events import ArtifactPublished, ArtifactUploaded

from .conftest import SETTINGS
from .fakes import Fakes, InMemoryArtifacts, InMemoryObjectStore

BUCKET = SETTINGS.artifacts_bucket
BODY = b"# Result\n\nAll done.\n"
Upload = Callable[..., ArtifactUploaded]
Rerun = Callable[[ArtifactUploaded], ArtifactUploaded]


@pytest.fixture
def artifacts(fakes: Fakes) -> InMemoryArtifacts:
    return fakes.artifacts


@pytest.fixture
def objects(fakes: Fakes) -> InMemoryObjectStore:
    return fakes.objects


@pytest.fixture
def publishing(service: ArtifactService) -> ArtifactPublishing:
    return service.publishing


def stage(
    objects: InMemoryObjectStore,
    event: ArtifactUploaded,
    body: bytes = BODY,
    *,
    checksummed: bool = True,
) -> None:
    objects.put(event.data.bucket, event.data.key, body, checksummed=checksummed)


async def test_matching_upload_is_published(
    publishing: ArtifactPublishing,
    artifacts: InMemoryArtifacts,
    objects: InMemoryObjectStore,
    upload_event: Upload,
) -> None:
    event = upload_event(BODY, name="out/result.md", attempt=2, step=3)
    stage(objects, event)

    await publishing.handle_upload(event)

    record = artifacts.records[event.data.artifact_id]
    assert record.status is ArtifactStatus.PUBLISHED
    assert (record.tenant_id, record.task_id) == (event.metadata.tenant_id, event.metadata.task_id)
    assert (record.name, record.size, record.sha256) == (
        "out/result.md",
        len(BODY),
        event.data.sha256,
    )
    assert record.created_at == event.metadata.occurred_at
    # served from where the agent uploaded it: nothing copied, nothing deleted
    assert record.object_key == event.data.key
    assert list(objects.objects) == [(BUCKET, event.data.key)]
    [announced] = artifacts.outbox.values()
    assert isinstance(announced, ArtifactPublished)
    assert announced.data.model_dump() == {
        "artifact_id": event.data.artifact_id,
        "name": "out/result.md",
        "content_type": event.data.content_type,
        "size": len(BODY),
        "sha256": event.data.sha256,
        "attempt": 2,  # the upload's provenance: the step that wrote it
        "step": 3,
    }
    assert announced.metadata.causation_id == str(event.metadata.event_id)
    assert announced.metadata.correlation_id == event.metadata.correlation_id
    assert announced.metadata.tenant_id == event.metadata.tenant_id
    assert event.metadata.event_id in artifacts.inbox


async def test_duplicates_and_reruns_publish_once(
    publishing: ArtifactPublishing,
    artifacts: InMemoryArtifacts,
    objects: InMemoryObjectStore,
    upload_event: Upload,
    rerun: Rerun,
) -> None:
    event = upload_event(BODY)
    stage(objects, event)
    await publishing.handle_upload(event)
    await publishing.handle_upload(event)  # redelivery
    second = rerun(event)
    stage(objects, second, b"what the re-run wrote")  # to its own attempt's key
    await publishing.handle_upload(second)

    assert len(artifacts.records) == 1
    # the record still describes the object it points at: the first upload
    assert artifacts.records[event.data.artifact_id].object_key == event.data.key
    [announced] = artifacts.outbox.values()
    assert isinstance(announced, ArtifactPublished)
    # one artifact, one announcement: it names the upload that got published
    assert (announced.data.attempt, announced.data.step) == (1, 1)
    assert announced.metadata.causation_id == str(event.metadata.event_id)


async def test_upload_without_an_attempt_is_rejected(
    publishing: ArtifactPublishing,
    artifacts: InMemoryArtifacts,
    objects: InMemoryObjectStore,
    upload_event: Upload,
) -> None:
    # an agent before provenance: its key cannot be one attempt's, so it is not published
    event = upload_event(BODY, attempt=None, step=None)
    stage(objects, event)

    await publishing.handle_upload(event)

    record = artifacts.records[event.data.artifact_id]
    assert record.status is ArtifactStatus.REJECTED
    assert record.rejection_reason == "object key is not the artifact's upload key"
    assert artifacts.outbox == {}


async def test_upload_with_only_an_attempt_keeps_it(
    publishing: ArtifactPublishing,
    artifacts: InMemoryArtifacts,
    objects: InMemoryObjectStore,
    upload_event: Upload,
) -> None:
    event = upload_event(BODY, attempt=3, step=None)
    stage(objects, event)

    await publishing.handle_upload(event)

    [announced] = artifacts.outbox.values()
    assert isinstance(announced, ArtifactPublished)
    assert (announced.data.attempt, announced.data.step) == (3, None)


@pytest.mark.parametrize(
    ("declared", "reason"),
    [
        (
            {"size": len(BODY) + 1},
            f"uploaded object's size is {len(BODY)}, declared {len(BODY) + 1}",
        ),
        ({"sha256": "0" * 64}, f"uploaded object's sha256 is {hashlib.sha256(BODY).hexdigest()}"),
    ],
)
async def test_mismatch_is_rejected_and_not_published(
    publishing: ArtifactPublishing,
    artifacts: InMemoryArtifacts,
    objects: InMemoryObjectStore,
    upload_event: Upload,
    caplog: pytest.LogCaptureFixture,
    declared: dict[str, object],
    reason: str,
) -> None:
    event = upload_event(BODY, **declared)
    stage(objects, event)

    with caplog.at_level(logging.WARNING):
        await publishing.handle_upload(event)

    record = artifacts.records[event.data.artifact_id]
    assert record.status is ArtifactStatus.REJECTED
    assert record.rejection_reason is not None
    assert record.rejection_reason.startswith(reason)
    assert record.object_key is None
    assert artifacts.outbox == {}
    assert (BUCKET, event.data.key) in objects.objects  # kept as evidence, never served
    assert "rejected artifact" in caplog.text


async def test_upload_without_a_checksum_is_rejected(
    publishing: ArtifactPublishing,
    artifacts: InMemoryArtifacts,
    objects: InMemoryObjectStore,
    upload_event: Upload,
) -> None:
    # the right bytes, but S3 never checked them: nothing vouches for them without a read
    event = upload_event(BODY)
    stage(objects, event, checksummed=False)

    await publishing.handle_upload(event)

    record = artifacts.records[event.data.artifact_id]
    assert record.status is ArtifactStatus.REJECTED
    assert record.rejection_reason == "uploaded object has no SHA-256 checksum"
    assert artifacts.outbox == {}


async def test_unsafe_name_is_rejected_without_reading_the_object(
    publishing: ArtifactPublishing, artifacts: InMemoryArtifacts, upload_event: Upload
) -> None:
    event = upload_event(BODY, name="../../etc/passwd\x00")

    await publishing.handle_upload(event)  # nothing uploaded: the object is never looked at

    record = artifacts.records[event.data.artifact_id]
    assert record.status is ArtifactStatus.REJECTED
    assert record.rejection_reason == "name contains '..'"
    assert "\x00" not in record.name
    assert artifacts.outbox == {}


async def test_missing_object_raises_for_a_retry(
    publishing: ArtifactPublishing, artifacts: InMemoryArtifacts, upload_event: Upload
) -> None:
    event = upload_event(BODY)

    with pytest.raises(StagingObjectMissing):
        await publishing.handle_upload(event)

    assert artifacts.records == {}
    assert artifacts.inbox == set()  # nothing claimed: the retry does the work


async def test_good_reupload_supersedes_a_rejected_one(
    publishing: ArtifactPublishing,
    artifacts: InMemoryArtifacts,
    objects: InMemoryObjectStore,
    upload_event: Upload,
    rerun: Rerun,
) -> None:
    event = upload_event(BODY)
    stage(objects, event, b"truncated")
    await publishing.handle_upload(event)
    assert artifacts.records[event.data.artifact_id].status is ArtifactStatus.REJECTED

    second = rerun(event)
    stage(objects, second)
    await publishing.handle_upload(second)

    record = artifacts.records[event.data.artifact_id]
    assert record.status is ArtifactStatus.PUBLISHED
    assert record.rejection_reason is None
    [announced] = artifacts.outbox.values()
    assert isinstance(announced, ArtifactPublished)
    # announced with the provenance of the re-upload that was published, not the rejected one
    assert (second.data.attempt, second.data.step) == (2, 1)
    assert (announced.data.attempt, announced.data.step) == (2, 1)
    assert announced.metadata.causation_id == str(second.metadata.event_id)


async def test_same_artifact_id_in_another_task_is_not_published(
    publishing: ArtifactPublishing,
    artifacts: InMemoryArtifacts,
    objects: InMemoryObjectStore,
    upload_event: Upload,
) -> None:
    first = upload_event(BODY, size=1)  # rejected: mismatch
    stage(objects, first)
    await publishing.handle_upload(first)
    other = upload_event(BODY, tenant_id="globex", artifact_id=first.data.artifact_id)
    stage(objects, other)

    await publishing.handle_upload(other)

    record = artifacts.records[first.data.artifact_id]
    assert (record.tenant_id, record.status) == ("acme", ArtifactStatus.REJECTED)
    assert artifacts.outbox == {}
