from __future__ import annotations

import hashlib
import uuid

from agent.artifacts import artifact_id, content_type, stage

from .fakes import InMemoryStaging


def test_artifact_id_is_derived_from_task_path_and_write_number() -> None:
    task = uuid.uuid4()
    assert artifact_id(task, "a.md", 1) == uuid.uuid5(task, "a.md#1")
    assert artifact_id(task, "a.md", 1) == artifact_id(task, "a.md", 1)
    assert artifact_id(task, "a.md", 2) != artifact_id(task, "a.md", 1)
    assert artifact_id(uuid.uuid4(), "a.md", 1) != artifact_id(task, "a.md", 1)


def test_content_type_guessed_from_name() -> None:
    assert content_type("report.md") == "text/markdown"
    assert content_type("data/table.csv") == "text/csv"
    assert content_type("blob") == "application/octet-stream"


async def test_stage_uploads_and_describes_the_object() -> None:
    area = InMemoryStaging()
    task = uuid.uuid4()
    data = b"# Report\n"
    uploaded = await stage(
        area,
        tenant_id="acme",
        task_id=task,
        name="out/report.md",
        data=data,
        write_number=1,
        attempt=2,
        step=3,
    )
    expected_id = uuid.uuid5(task, "out/report.md#1")
    assert uploaded.artifact_id == expected_id
    assert uploaded.key == f"artifacts/acme/{task}/{expected_id}/2/out/report.md"
    assert (uploaded.size, uploaded.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert (uploaded.bucket, uploaded.content_type) == ("relay-test-artifacts", "text/markdown")
    assert (uploaded.attempt, uploaded.step) == (2, 3)  # the step that wrote it
    assert area.objects == {uploaded.key: (data, "text/markdown", hashlib.sha256(data).digest())}
