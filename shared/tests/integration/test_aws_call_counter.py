"""The kit's AWS clients count their API calls (relay.aws.calls) and the EventBridge entries they
hand over (relay.aws.events.sent): what `make bench` reads to give AWS requests per task."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from relay_devkit.testing import Recorded
from relay_shared.aws import aws_client
from relay_shared.settings import ServiceSettings

pytestmark = pytest.mark.integration


def _totals(telemetry: Recorded) -> dict[tuple[str, tuple[tuple[str, object], ...]], float]:
    """Every counter point in this process, by metric name and attributes (cumulative)."""
    data = telemetry.metrics.get_metrics_data()
    totals: dict[tuple[str, tuple[tuple[str, object], ...]], float] = {}
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in getattr(metric.data, "data_points", []):
                    key = (metric.name, tuple(sorted((point.attributes or {}).items())))
                    totals[key] = float(getattr(point, "value", 0))
    return totals


def _delta(
    before: dict[tuple[str, tuple[tuple[str, object], ...]], float],
    after: dict[tuple[str, tuple[tuple[str, object], ...]], float],
) -> dict[tuple[str, tuple[tuple[str, object], ...]], float]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def _call(service: str, method: str) -> tuple[str, tuple[tuple[str, object], ...]]:
    return ("relay.aws.calls", (("rpc.method", method), ("rpc.service", service)))


async def test_each_api_call_is_counted_once_by_service_and_operation(
    moto_endpoint: str, telemetry: Recorded
) -> None:
    settings = ServiceSettings(service_name="tasks", aws_endpoint_url=moto_endpoint)
    queue = f"count-{uuid.uuid4().hex[:8]}"
    before = _totals(telemetry)
    async with aws_client(settings, "sqs") as sqs, aws_client(settings, "events") as events:
        url = (await sqs.create_queue(QueueName=queue))["QueueUrl"]
        for _ in range(3):
            await sqs.send_message(QueueUrl=url, MessageBody="{}")
        entry = {"Source": "relay.tasks", "DetailType": "t", "Detail": json.dumps({})}
        await events.put_events(Entries=[entry] * 4)
        await events.put_events(Entries=[entry])
    delta = _delta(before, _totals(telemetry))
    assert delta == {
        _call("sqs", "CreateQueue"): 1,
        _call("sqs", "SendMessage"): 3,
        _call("events", "PutEvents"): 2,
        ("relay.aws.events.sent", ()): 5,  # entries, not calls: batching shows here
    }


async def test_a_refused_call_counts_too(moto_endpoint: str, telemetry: Recorded) -> None:
    """A call AWS answers with an error was still made (and billed, on most services)."""
    settings = ServiceSettings(service_name="tasks", aws_endpoint_url=moto_endpoint)
    before = _totals(telemetry)
    async with aws_client(settings, "sqs") as sqs:
        with pytest.raises(sqs.exceptions.QueueDoesNotExist):
            await sqs.get_queue_url(QueueName=f"missing-{uuid.uuid4().hex[:8]}")
    assert _delta(before, _totals(telemetry)) == {_call("sqs", "GetQueueUrl"): 1}


async def test_the_user_agent_is_what_botocore_builds_for_each_calls_features(
    moto_endpoint: str,
) -> None:
    """The kit reuses a built User-Agent header (ADR 0028): every call must still send what
    botocore would build for it, including when calls report different SDK features (an S3
    upload with a checksum reports more than a HEAD)."""
    settings = ServiceSettings(service_name="tasks", aws_endpoint_url=moto_endpoint)
    bucket = f"ua-{uuid.uuid4().hex[:8]}"
    sent: list[tuple[str, str]] = []
    async with aws_client(settings, "s3") as s3:
        creator = s3._user_agent_creator

        def record(request: Any, **_: Any) -> None:
            fresh = type(creator).to_string(creator)  # botocore's own build, for this call
            sent.append((request.headers["User-Agent"].decode(), fresh))

        s3.meta.events.register("before-send", record)
        await s3.create_bucket(Bucket=bucket)
        for _ in range(2):
            await s3.put_object(Bucket=bucket, Key="k", Body=b"x", ChecksumAlgorithm="SHA256")
            await s3.head_object(Bucket=bucket, Key="k")
    assert len(sent) == 5
    assert all(header == fresh for header, fresh in sent)
    assert len({header for header, _ in sent}) >= 2  # the features differ between operations
