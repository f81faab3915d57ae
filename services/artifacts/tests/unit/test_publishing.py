"""Verifying and publishing uploads, with the in-memory artifacts ledger and object store."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

import pytest

from artifacts.app import build
from artifacts.models import ArtifactStatus
from artifacts.service import ArtifactPublishing, ArtifactService, StagingObjectMissing
from artifacts.verification import published_key
from relay_shared.events import ArtifactPublished, ArtifactUploaded

from .conftest import SETTINGS
from .fakes import (
    Fakes,
    InMemoryArtifacts,
    InMemoryObjectStore,
    OverwrittenAfterDigestObjectStore,
    PreconditionFailed,
    UndeletableObjectStore,
)

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


def stage(objects: InMemoryObjectStore, event: ArtifactUploaded, body: bytes = BODY) -> None:
    objects.put(event.data.bucket, event.data.key, body)


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
    published = objects.objects[BUCKET, published_key(event)]
    assert published.body == BODY
    assert published.content_type == event.data.content_type
    assert (BUCKET, event.data.key) not in objects.objects  # staging copy removed
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
    await publishing.handle_upload(event)  # redelivery: the staging object is gone now
    second = rerun(event)
    stage(objects, second)  # the re-run staged the same file again
    await publishing.handle_upload(second)

    assert len(artifacts.records) == 1
    [announced] = artifacts.outbox.values()
    assert isinstance(announced, ArtifactPublished)
    # one artifact, one announcement: it names the upload that got published
    assert (announced.data.attempt, announced.data.step) == (1, 1)
    assert announced.metadata.causation_id == str(event.metadata.event_id)


async def test_upload_without_provenance_is_published_without_it(
    publishing: ArtifactPublishing,
    artifacts: InMemoryArtifacts,
    objects: InMemoryObjectStore,
    upload_event: Upload,
) -> None:
    event = upload_event(BODY, attempt=None, step=None)  # from an agent before provenance
    stage(objects, event)

    await publishing.handle_upload(event)

    [announced] = artifacts.outbox.values()
    assert isinstance(announced, ArtifactPublished)
    assert (announced.data.attempt, announced.data.step) == (None, None)
    assert announced.data.artifact_id == event.data.artifact_id


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
        ({"size": len(BODY) + 1}, f"staged object's size is {len(BODY)}, declared {len(BODY) + 1}"),
        ({"sha256": "0" * 64}, f"staged object's sha256 is {hashlib.sha256(BODY).hexdigest()}"),
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
    assert (BUCKET, published_key(event)) not in objects.objects
    assert (BUCKET, event.data.key) in objects.objects  # kept as evidence until it expires
    assert "rejected artifact" in caplog.text


async def test_unsafe_name_is_rejected_without_reading_the_object(
    publishing: ArtifactPublishing, artifacts: InMemoryArtifacts, upload_event: Upload
) -> None:
    event = upload_event(BODY, name="../../etc/passwd\x00")

    await publishing.handle_upload(event)  # nothing staged: the object is never needed

    record = artifacts.records[event.data.artifact_id]
    assert record.status is ArtifactStatus.REJECTED
    assert record.rejection_reason == "name contains '..'"
    assert "\x00" not in record.name
    assert artifacts.outbox == {}


async def test_missing_staging_object_raises_for_a_retry(
    publishing: ArtifactPublishing, artifacts: InMemoryArtifacts, upload_event: Upload
) -> None:
    event = upload_event(BODY)

    with pytest.raises(StagingObjectMissing):
        await publishing.handle_upload(event)

    assert artifacts.records == {}
    assert artifacts.inbox == set()  # nothing claimed: the retry does the work


async def test_missing_staging_object_of_a_rejected_artifact_is_a_no_op(
    publishing: ArtifactPublishing,
    artifacts: InMemoryArtifacts,
    objects: InMemoryObjectStore,
    upload_event: Upload,
    rerun: Rerun,
) -> None:
    event = upload_event(BODY, size=1)
    stage(objects, event)
    await publishing.handle_upload(event)
    objects.objects.clear()  # the lifecycle rule expired the staging object

    await publishing.handle_upload(rerun(event))

    assert artifacts.records[event.data.artifact_id].status is ArtifactStatus.REJECTED


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


async def test_changed_object_between_check_and_copy_records_nothing(upload_event: Upload) -> None:
    fakes = Fakes(objects=OverwrittenAfterDigestObjectStore())
    artifacts = fakes.artifacts
    event = upload_event(BODY)
    stage(fakes.objects, event)

    with pytest.raises(PreconditionFailed):
        await build(SETTINGS, fakes.ports()).publishing.handle_upload(event)

    assert artifacts.records == {}
    assert artifacts.inbox == set()
    assert artifacts.outbox == {}


async def test_failed_staging_delete_still_publishes(
    upload_event: Upload, caplog: pytest.LogCaptureFixture
) -> None:
    fakes = Fakes(objects=UndeletableObjectStore())
    artifacts = fakes.artifacts
    event = upload_event(BODY)
    stage(fakes.objects, event)

    with caplog.at_level(logging.WARNING):
        await build(SETTINGS, fakes.ports()).publishing.handle_upload(event)

    assert artifacts.records[event.data.artifact_id].status is ArtifactStatus.PUBLISHED
    assert len(artifacts.outbox) == 1
    assert "could not delete staging object" in caplog.text


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
