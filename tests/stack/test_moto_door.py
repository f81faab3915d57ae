"""The stack's moto opens its public port only when told: a restarted moto is empty, and a
service that reached it before the topology is rebuilt could publish into a bus with no rules."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import time
from collections.abc import Iterator

import boto3
import httpx
import pytest
from moto.sqs.models import SQSBackend

from relay_ops.stack.moto import free_port, moto_door_command, wait_until_up
from relay_ops.stack.moto_door import OPEN, read_retention_directly
from relay_ops.stack.topology import Topology, seen_from

pytestmark = pytest.mark.integration


@pytest.fixture
def door(aws_credentials: None) -> Iterator[tuple[subprocess.Popen[bytes], str, str]]:
    public, private = free_port(), free_port()
    process = subprocess.Popen(moto_door_command(public, "127.0.0.1", private))
    try:
        yield process, f"http://127.0.0.1:{public}", f"http://127.0.0.1:{private}"
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0  # SIGTERM is a clean stop


def test_the_public_port_opens_on_the_signal_onto_what_was_built_through_the_private_one(
    door: tuple[subprocess.Popen[bytes], str, str],
) -> None:
    process, public, private = door
    wait_until_up(private)
    sqs = boto3.client("sqs", endpoint_url=private, region_name="us-east-1")
    sqs.create_queue(QueueName="built-before-opening")

    with pytest.raises(httpx.ConnectError):  # closed: a service's call fails and is retried
        httpx.get(f"{public}/moto-api/data.json", timeout=2)

    os.kill(process.pid, OPEN)
    wait_until_up(public, timeout=10)
    seen = boto3.client("sqs", endpoint_url=public, region_name="us-east-1")
    urls = seen.list_queues()["QueueUrls"]
    assert [url.rsplit("/", 1)[-1] for url in urls] == ["built-before-opening"]
    assert process.poll() is None


def test_calls_share_one_connection_as_they_do_on_aws(
    door: tuple[subprocess.Popen[bytes], str, str],
) -> None:
    """werkzeug's server closed every connection: each AWS call paid a TCP connection and a
    moto thread, a cost of the emulator counted as the services' (ADR 0025)."""
    process, public, private = door
    wait_until_up(private)
    os.kill(process.pid, OPEN)
    wait_until_up(public, timeout=10)
    host, port = public.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        for _ in range(3):
            connection.request("GET", "/moto-api/data.json")
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            assert response.getheader("Connection", "").lower() != "close"
            assert not response.will_close  # the next request goes on the same socket
    finally:
        connection.close()


def test_each_event_reaches_the_rules_queues_in_the_aws_shape_with_its_own_detail(
    door: tuple[subprocess.Popen[bytes], str, str],
) -> None:
    """The door parses moto's JSON paths once (ADR 0027): events formatted through the same
    parsed paths still each carry their own fields."""
    process, _, private = door
    wait_until_up(private)
    aws = {"endpoint_url": private, "region_name": "us-east-1"}
    events, sqs = boto3.client("events", **aws), boto3.client("sqs", **aws)
    events.create_event_bus(Name="bus")
    queues = [sqs.create_queue(QueueName=f"q{n}")["QueueUrl"] for n in range(2)]
    for n, url in enumerate(queues):
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        pattern = {"source": ["relay.tasks"], "detail-type": ["task.submitted"]}
        events.put_rule(Name=f"r{n}", EventBusName="bus", EventPattern=json.dumps(pattern))
        target = {"Id": "t", "Arn": arn["Attributes"]["QueueArn"]}
        events.put_targets(Rule=f"r{n}", EventBusName="bus", Targets=[target])

    sent = [{"seq": seq, "text": "x" * seq} for seq in range(1, 6)]
    for detail in sent:
        entry = {"Source": "relay.tasks", "DetailType": "task.submitted", "EventBusName": "bus"}
        assert (
            events.put_events(Entries=[entry | {"Detail": json.dumps(detail)}])["FailedEntryCount"]
            == 0
        )

    for url in queues:
        bodies = [
            json.loads(m["Body"])
            for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        ]
        assert sorted((b["detail"] for b in bodies), key=lambda d: d["seq"]) == sent
        assert {(b["source"], b["detail-type"], b["region"]) for b in bodies} == {
            ("relay.tasks", "task.submitted", "us-east-1")
        }
        assert len({b["id"] for b in bodies}) == len(sent)
    assert process.poll() is None


@pytest.mark.parametrize("age_seconds", [0, 59, 60.5, 3600])
def test_the_retention_check_reading_the_period_directly_decides_as_motos_own(
    monkeypatch: pytest.MonkeyPatch, age_seconds: float
) -> None:
    """ADR 0027: the door's check reads the queue's period instead of building every
    attribute of the queue for each message received; it must answer as moto's does."""
    own = SQSBackend.is_message_valid_based_on_retention_period
    monkeypatch.setattr(SQSBackend, "is_message_valid_based_on_retention_period", own)
    backend = SQSBackend("us-east-1", "123456789012")
    backend.create_queue("short", MessageRetentionPeriod="60")
    backend.create_queue("default")  # four days
    verdicts = []
    for door in (False, True):
        if door:
            read_retention_directly()
        for name in ("short", "default"):
            message = backend.send_message(name, "body")
            message.sent_timestamp = int((time.time() - age_seconds) * 1000)
            check = SQSBackend.is_message_valid_based_on_retention_period
            verdicts.append((name, check(backend, name, message)))

    assert verdicts[:2] == verdicts[2:]
    assert verdicts[:2] == [("short", age_seconds < 60), ("default", True)]


def test_queue_urls_are_moved_to_the_public_endpoint_and_nothing_else_is() -> None:
    built = Topology(
        env="e",
        queue_urls={"agent": "http://127.0.0.1:9001/123456789012/relay-e-agent"},
        dlq_urls={"agent": "http://127.0.0.1:9001/123456789012/relay-e-agent-dlq"},
        delivery_dlq_urls={"agent": "https://sqs.us-east-1.amazonaws.com/1/relay-e-agent-d"},
        bucket="b",
    )
    seen = seen_from(built, "http://127.0.0.1:9001", "http://127.0.0.1:4566")
    assert seen.queue_urls == {"agent": "http://127.0.0.1:4566/123456789012/relay-e-agent"}
    assert seen.dlq_urls == {"agent": "http://127.0.0.1:4566/123456789012/relay-e-agent-dlq"}
    assert seen.delivery_dlq_urls == built.delivery_dlq_urls
    assert (seen.env, seen.bucket) == ("e", "b")
