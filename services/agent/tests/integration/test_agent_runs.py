"""task.submitted through the real handler, PostgreSQL outbox and moto S3."""

from __future__ import annotations

import base64
import hashlib
import uuid

import pytest

from agent.artifacts import S3StagingArea
from agent.handlers import event_dispatcher
from relay_shared.events import TaskSubmitted, TaskSubmittedData

pytestmark = pytest.mark.integration


def _submitted(prompt: str) -> TaskSubmitted:
    return TaskSubmitted.create(
        TaskSubmittedData(prompt=prompt, model="scripted"), tenant_id="acme", task_id=uuid.uuid4()
    )


async def test_submitted_task_runs_to_success_with_a_verified_staged_artifact(
    runtime, counting
) -> None:
    event = _submitted("Quarterly report\n/steps 3\n/artifact report.md\n/artifact data.csv")
    await event_dispatcher(runtime.service(counting())).dispatch(event)

    rows = await runtime.outbox()
    # all artifacts are written on the last step, and follow that step's progress
    assert [r["detail_type"] for r in rows] == [
        "task.started",
        "task.progressed",
        "task.progressed",
        "task.progressed",
        "artifact.uploaded",
        "artifact.uploaded",
        "task.succeeded",
    ]
    details = [r["detail"] for r in rows]
    assert {d["metadata"]["task_id"] for d in details} == {str(event.metadata.task_id)}
    assert details[0]["metadata"]["causation_id"] == str(event.metadata.event_id)
    assert [(d["data"]["attempt"], d["data"]["step"]) for d in details[1:4]] == [
        (1, 1),
        (1, 2),
        (1, 3),
    ]

    uploads = [d["data"] for d, r in zip(details, rows, strict=True)
               if r["detail_type"] == "artifact.uploaded"]  # fmt: skip
    assert [(u["name"], u["attempt"], u["step"]) for u in uploads] == [
        ("report.md", 1, 3),
        ("data.csv", 1, 3),
    ]
    for upload in uploads:
        obj = await runtime.s3.get_object(Bucket=upload["bucket"], Key=upload["key"])
        body = await obj["Body"].read()
        assert len(body) == upload["size"] == obj["ContentLength"]
        assert hashlib.sha256(body).hexdigest() == upload["sha256"]
        assert obj["ContentType"] == upload["content_type"]
        assert upload["key"] == (
            f"artifacts/acme/{event.metadata.task_id}/{upload['artifact_id']}/1/{upload['name']}"
        )
        assert b"Quarterly report" in body
        assert b"step 3 of 3" in body
    assert uploads[0]["bucket"] == runtime.settings.artifacts_bucket

    succeeded = details[-1]["data"]
    assert succeeded["summary"] == "Completed 3 steps; wrote report.md, data.csv."
    assert succeeded["artifact_ids"] == [u["artifact_id"] for u in uploads]
    run = await runtime.run_row(event.metadata.task_id)
    assert run is not None
    assert (run["status"], run["attempt"], run["steps"]) == ("succeeded", 1, 3)
    assert run["usage"] == succeeded["usage"]
    assert run["finished_at"] is not None


async def test_fail_directive_ends_the_task_failed(runtime, counting) -> None:
    event = _submitted("Try\n/steps 1\n/fail boom")
    await event_dispatcher(runtime.service(counting())).dispatch(event)

    rows = await runtime.outbox()
    assert [r["detail_type"] for r in rows] == [
        "task.started",
        "task.progressed",
        "artifact.uploaded",
        "task.failed",
    ]
    uploaded = rows[2]["detail"]["data"]
    assert (uploaded["attempt"], uploaded["step"]) == (1, 1)
    failed = rows[-1]["detail"]["data"]
    assert (failed["code"], failed["message"], failed["attempt"]) == ("scripted_failure", "boom", 1)
    run = await runtime.run_row(event.metadata.task_id)
    assert run is not None
    assert run["status"] == "failed"


async def test_finished_task_handled_again_does_not_call_the_model(runtime, counting) -> None:
    provider = counting()
    dispatch = event_dispatcher(runtime.service(provider)).dispatch
    event = _submitted("Once\n/steps 2")

    await dispatch(event)
    assert provider.calls == 3
    emitted = len(await runtime.outbox())
    await dispatch(event)

    assert provider.calls == 3
    assert len(await runtime.outbox()) == emitted


async def test_crashed_attempt_is_rerun_as_the_next_attempt(runtime, counting) -> None:
    provider = counting(fail_on_call=3)  # after step 2, which wrote the artifact
    dispatch = event_dispatcher(runtime.service(provider)).dispatch
    event = _submitted("Retry me\n/steps 2")

    with pytest.raises(RuntimeError, match="worker bug"):
        await dispatch(event)
    run = await runtime.run_row(event.metadata.task_id)
    assert run is not None
    assert (run["status"], run["attempt"], run["steps"]) == ("running", 1, 2)

    await dispatch(event)  # the redelivery

    rows = await runtime.outbox()
    assert [r["detail_type"] for r in rows] == [
        "task.started",
        "task.progressed",
        "task.progressed",
        "artifact.uploaded",
        "task.started",
        "task.progressed",
        "task.progressed",
        "artifact.uploaded",
        "task.succeeded",
    ]
    assert rows[4]["detail"]["data"]["attempt"] == 2
    assert rows[-1]["detail"]["data"]["steps"] == 2
    first, second = rows[3]["detail"]["data"], rows[7]["detail"]["data"]
    assert first["artifact_id"] == second["artifact_id"]  # the same id: artifacts dedupes it
    assert [(u["attempt"], u["step"]) for u in (first, second)] == [(1, 2), (2, 2)]
    run = await runtime.run_row(event.metadata.task_id)
    assert run is not None
    assert (run["status"], run["attempt"], run["steps"]) == ("succeeded", 2, 2)


async def test_an_upload_is_written_once_and_a_retried_put_keeps_the_first_bytes(runtime) -> None:
    area = S3StagingArea(runtime.s3, runtime.settings.artifacts_bucket)
    key = f"artifacts/acme/{uuid.uuid4()}/{uuid.uuid4()}/1/report.md"
    first, second = b"first bytes", b"other bytes"
    await area.put(key, first, content_type="text/markdown", sha256=hashlib.sha256(first).digest())
    # a PUT retried after its first try landed: If-None-Match refuses it, and that is no error
    await area.put(key, second, content_type="text/plain", sha256=hashlib.sha256(second).digest())

    head = await runtime.s3.head_object(
        Bucket=runtime.settings.artifacts_bucket, Key=key, ChecksumMode="ENABLED"
    )
    assert head["ContentLength"] == len(first)
    assert head["ContentType"] == "text/markdown"
    # S3 keeps the checksum: what the artifacts service verifies without reading the bytes
    assert base64.b64decode(head["ChecksumSHA256"]) == hashlib.sha256(first).digest()
