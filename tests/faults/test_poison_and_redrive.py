"""A poison message reaches the DLQ after maxReceiveCount, with its reason in the log; once
its cause is fixed, `relay dlq redrive` gets it processed exactly once."""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid
from typing import Any

import boto3
import pytest

from relay_devkit.api_client import PublicApi
from relay_devkit.testing import eventually
from relay_ops.routing import dlq_name, load_routing
from relay_ops.stack.process import RELAY, RunningStack
from relay_shared.events import ArtifactUploaded, ArtifactUploadedData

from .workload import all_terminal, record, submit

CONTENT = b"# Late\n\nWritten after the fact.\n"


def _depth(stack: RunningStack, queue: str) -> int:
    sqs: Any = boto3.client("sqs", endpoint_url=stack.moto_endpoint, region_name="us-east-1")
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def _relay_dlq(stack: RunningStack, *args: str) -> str:
    done = subprocess.run(
        [RELAY, "dlq", *args],
        env={
            **stack.environment,
            "RELAY_AWS_ENDPOINT_URL": stack.moto_endpoint,
            "RELAY_ENV": stack.config.env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


@pytest.mark.timeout(600)
async def test_a_poison_message_is_dead_lettered_then_redriven_once(
    fault_stack: RunningStack, api: PublicApi
) -> None:
    task_id = await submit(api, "/steps 1")
    await all_terminal(api, [task_id], within=60)
    tenant = "faults"
    artifact_id = uuid.uuid4()
    key = f"artifacts/{tenant}/{task_id}/{artifact_id}/1/late.md"
    # the agent's announcement of a file that is not uploaded (yet): the artifacts
    # service cannot verify it, fails on every receive, and the queue dead-letters it
    uploaded = ArtifactUploaded.create(
        ArtifactUploadedData(
            artifact_id=artifact_id,
            name="late.md",
            content_type="text/markdown",
            size=len(CONTENT),
            sha256=hashlib.sha256(CONTENT).hexdigest(),
            bucket=fault_stack.bucket,
            key=key,
            attempt=1,
        ),
        tenant_id=tenant,
        task_id=uuid.UUID(task_id),
    )
    events: Any = boto3.client(
        "events", endpoint_url=fault_stack.moto_endpoint, region_name="us-east-1"
    )
    entry = {
        "EventBusName": fault_stack.bus,
        "Source": uploaded.source(),
        "DetailType": uploaded.name,
        "Detail": json.dumps(uploaded.detail()),
    }
    assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0

    dlq = dlq_name(fault_stack.config.env, "artifacts")
    max_receives = load_routing().queue_settings("artifacts").max_receive_count

    async def dead() -> int:
        return _depth(fault_stack, dlq)

    await eventually(dead, until=lambda n: n == 1, within=180, interval=1)
    log = (fault_stack.config.log_dir / "artifacts.log").read_text()
    assert f"goes to the DLQ after {max_receives} receives" in log
    assert str(uploaded.metadata.event_id) in log
    assert "late.md" not in [a["name"] for a in await api.artifacts(task_id)]
    assert str(uploaded.metadata.event_id) in _relay_dlq(fault_stack, "show", "artifacts")

    # fix the cause: the file arrives, uploaded as the agent uploads (with its SHA-256); redrive
    s3: Any = boto3.client("s3", endpoint_url=fault_stack.moto_endpoint, region_name="us-east-1")
    s3.put_object(
        Bucket=fault_stack.bucket,
        Key=key,
        Body=CONTENT,
        ContentType="text/markdown",
        ChecksumAlgorithm="SHA256",
    )
    _relay_dlq(fault_stack, "redrive", "artifacts")

    async def late_artifacts() -> list[dict[str, Any]]:
        return [a for a in await api.artifacts(task_id) if a["name"] == "late.md"]

    [artifact] = await eventually(late_artifacts, within=60)
    assert artifact["id"] == str(artifact_id)
    assert artifact["sha256"] == hashlib.sha256(CONTENT).hexdigest()
    assert _depth(fault_stack, dlq) == 0

    # exactly once: the same event again, and another redrive, change nothing
    assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0
    _relay_dlq(fault_stack, "redrive", "artifacts")
    queue = f"relay-{fault_stack.config.env}-artifacts"

    async def drained() -> int:
        return _depth(fault_stack, queue)

    await eventually(drained, until=lambda n: n == 0, within=60)
    assert len(await late_artifacts()) == 1
    record("poison_and_redrive", {"max_receive_count": max_receives, "redriven": 1, "recorded": 1})
