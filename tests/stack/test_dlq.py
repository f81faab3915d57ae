"""`relay dlq list|show|redrive` against a moto server and the routing declaration's real queues.

moto has no StartMessageMoveTask, so every redrive here takes the receive-send-delete path (the
move task is covered in test_dlq_move_task.py)."""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from typer.testing import CliRunner, Result

from relay_ops.cli import app
from relay_ops.dlq import COPY, move_by_copy
from relay_ops.routing import load_routing
from relay_ops.stack.topology import Topology
from relay_shared.events import TaskCancelRequested

pytestmark = pytest.mark.integration

MAX_RECEIVES = load_routing().queue_defaults.max_receive_count


@pytest.fixture
def sqs(moto_endpoint: str) -> Any:
    return boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")


def _relay(moto_endpoint: str, topology: Topology, *args: str) -> Result:
    return CliRunner().invoke(
        app, ["dlq", *args, "--endpoint-url", moto_endpoint, "--env", topology.env]
    )


def _publish_cancel_requests(moto_endpoint: str, topology: Topology, count: int) -> list[Any]:
    """Real events on the bus; the rules deliver them to agent's control queue (and notifier's)."""
    events = boto3.client("events", endpoint_url=moto_endpoint, region_name="us-east-1")
    published = [
        TaskCancelRequested.create({"reason": "test"}, tenant_id="acme", task_id=uuid.uuid4())
        for _ in range(count)
    ]
    events.put_events(
        Entries=[
            {
                "EventBusName": f"relay-{topology.env}",
                "Source": event.source(),
                "DetailType": event.name,
                "Detail": json.dumps(event.detail()),
            }
            for event in published
        ]
    )
    return published


def _fail_until_dead(sqs: Any, url: str) -> None:
    """Receive without deleting, as a failing consumer does, until SQS dead-letters it all."""
    for _ in range(MAX_RECEIVES + 1):
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    assert _depth(sqs, url) == 0


def _depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def _put(sqs: Any, url: str, bodies: list[str], **extra: Any) -> None:
    for start in range(0, len(bodies), 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "MessageBody": body, **extra}
                for i, body in enumerate(bodies[start : start + 10])
            ],
        )


def _drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every message in the queue, deleted as read."""
    out: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            return out
        out.extend(messages)
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )


def _rows(output: str) -> dict[tuple[str, str], list[str]]:
    """The list table's rows by (service, queue)."""
    rows = {}
    for line in output.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line)[1:-1]]
        if len(cells) == 7 and cells[0] != "service":
            rows[(cells[0], cells[1])] = cells[2:]
    return rows


# --- list -----------------------------------------------------------------------------------


def test_list_shows_every_queue_with_its_depths_and_the_oldest_age(
    moto_endpoint: str, topology: Topology, sqs: Any
) -> None:
    _put(sqs, topology.queue_urls["tasks"], ["a", "b", "c"])
    _put(sqs, topology.dlq_urls["agent-control"], ["d1", "d2"])
    _put(sqs, topology.delivery_dlq_urls["notifier"], ["u1"])
    # SQS publishes this metric on AWS; moto does not, so the test stands in for it
    boto3.client("cloudwatch", endpoint_url=moto_endpoint, region_name="us-east-1").put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            {
                "MetricName": "ApproximateAgeOfOldestMessage",
                "Dimensions": [{"Name": "QueueName", "Value": f"relay-{topology.env}-tasks"}],
                "Value": 150,
                "Timestamp": datetime.now(UTC),
            }
        ],
    )

    result = _relay(moto_endpoint, topology, "list")

    assert result.exit_code == 0, result.output
    rows = _rows(result.output)
    assert set(rows) == set(load_routing().queues())
    # waiting, in flight, oldest, DLQ, delivery DLQ
    assert rows[("tasks", "main")] == ["3", "0", "2m", "0", "0"]
    assert rows[("agent", "control")] == ["0", "0", "-", "2", "0"]
    assert rows[("notifier", "main")] == ["0", "0", "-", "0", "1"]
    assert rows[("artifacts", "main")] == ["0", "0", "-", "0", "0"]
    assert "relay dlq show" in result.output


def test_list_for_an_env_without_queues_fails_naming_them(
    moto_endpoint: str, topology: Topology
) -> None:
    result = CliRunner().invoke(
        app, ["dlq", "list", "--endpoint-url", moto_endpoint, "--env", "nosuchenv"]
    )
    assert result.exit_code == 1
    assert "relay-nosuchenv-agent-dlq" in result.output
    assert "relay bootstrap" in result.output


def test_list_against_nothing_fails_with_the_endpoint_named(topology: Topology) -> None:
    result = CliRunner().invoke(
        app,
        ["dlq", "list", "--endpoint-url", "http://127.0.0.1:1", "--env", topology.env],
        env={"AWS_MAX_ATTEMPTS": "1"},
    )
    assert result.exit_code == 1
    assert "http://127.0.0.1:1" in result.output


# --- show -----------------------------------------------------------------------------------


def test_show_prints_the_dead_events_and_leaves_them_in_the_dlq(
    moto_endpoint: str, topology: Topology, sqs: Any
) -> None:
    published = _publish_cancel_requests(moto_endpoint, topology, 2)
    _fail_until_dead(sqs, topology.queue_urls["agent-control"])
    _put(sqs, topology.dlq_urls["agent-control"], ["not json at all"])

    first = _relay(moto_endpoint, topology, "show", "agent", "--queue", "control")
    again = _relay(moto_endpoint, topology, "show", "agent", "--queue", "control")

    assert first.exit_code == 0, first.output
    for event in published:
        line = next(x for x in first.output.splitlines() if str(event.metadata.event_id) in x)
        assert "task.cancel_requested" in line
        assert f"task {event.metadata.task_id}" in line
        assert "tenant acme" in line
    assert "(not an event)" in first.output
    assert "not json at all" in first.output  # the body excerpt
    receives = [int(n) for n in re.findall(r"receives (\d+)", first.output)]
    assert sorted(receives)[-2:] >= [MAX_RECEIVES, MAX_RECEIVES]  # what the consumer went through
    assert re.search(rf"first sent {datetime.now(UTC):%Y-%m-%d} ", first.output)
    # left in place, and visible again at once: a second look sees the same three
    assert _depth(sqs, topology.dlq_urls["agent-control"]) == 3
    assert sorted(re.findall(r"message (\S+)", again.output)) == sorted(
        re.findall(r"message (\S+)", first.output)
    )
    assert len(set(re.findall(r"message (\S+)", first.output))) == 3


def test_show_limit_shows_that_many_distinct_messages(
    moto_endpoint: str, topology: Topology, sqs: Any
) -> None:
    _put(sqs, topology.dlq_urls["tasks"], [f"m{i}" for i in range(15)])
    result = _relay(moto_endpoint, topology, "show", "tasks", "--limit", "12")
    assert result.exit_code == 0, result.output
    assert len(set(re.findall(r"message (\S+)", result.output))) == 12
    assert _depth(sqs, topology.dlq_urls["tasks"]) == 15


def test_show_delivery_names_why_eventbridge_could_not_deliver(
    moto_endpoint: str, topology: Topology, sqs: Any
) -> None:
    # the attributes EventBridge puts on an event it sends to a target's DLQ
    _put(
        sqs,
        topology.delivery_dlq_urls["notifier"],
        ["{}"],
        MessageAttributes={
            "ERROR_CODE": {"DataType": "String", "StringValue": "SQS.QueueDoesNotExist"},
            "ERROR_MESSAGE": {"DataType": "String", "StringValue": "queue is gone"},
        },
    )
    result = _relay(moto_endpoint, topology, "show", "notifier", "--delivery")
    assert result.exit_code == 0, result.output
    assert "not delivered: SQS.QueueDoesNotExist: queue is gone" in result.output


def test_a_queue_the_service_does_not_have_is_a_usage_error(
    moto_endpoint: str, topology: Topology
) -> None:
    result = _relay(moto_endpoint, topology, "show", "tasks", "--queue", "control")
    assert result.exit_code == 2
    assert "agent --queue control" in result.output  # names the queues that exist


# --- redrive --------------------------------------------------------------------------------


def test_redrive_moves_every_message_back_exactly_once(
    moto_endpoint: str, topology: Topology, sqs: Any
) -> None:
    bodies = [json.dumps({"n": i, "text": "ünïcode ✓"}) for i in range(23)]
    _put(
        sqs,
        topology.dlq_urls["agent"],
        bodies,
        MessageAttributes={"origin": {"DataType": "String", "StringValue": "test"}},
    )

    result = _relay(moto_endpoint, topology, "redrive", "agent")

    assert result.exit_code == 0, result.output
    assert f"Moved 23 from relay-{topology.env}-agent-dlq" in result.output
    assert COPY in result.output
    assert _depth(sqs, topology.dlq_urls["agent"]) == 0
    back = _drain(sqs, topology.queue_urls["agent"])
    assert Counter(m["Body"] for m in back) == Counter(bodies)  # identical, none twice
    assert all(m["MessageAttributes"]["origin"]["StringValue"] == "test" for m in back)


def test_redrive_limit_moves_that_many_and_leaves_the_rest(
    moto_endpoint: str, topology: Topology, sqs: Any
) -> None:
    _put(sqs, topology.dlq_urls["artifacts"], [f"m{i}" for i in range(12)])
    result = _relay(moto_endpoint, topology, "redrive", "artifacts", "--limit", "5")
    assert result.exit_code == 0, result.output
    assert "Moved 5 " in result.output
    assert len(_drain(sqs, topology.queue_urls["artifacts"])) == 5
    assert _depth(sqs, topology.dlq_urls["artifacts"]) == 7


def test_redrive_of_a_delivery_dlq_sends_its_events_to_the_queue(
    moto_endpoint: str, topology: Topology, sqs: Any
) -> None:
    published = _publish_cancel_requests(moto_endpoint, topology, 3)
    # what EventBridge would have delivered, had the queue been there: the same envelopes
    envelopes = [m["Body"] for m in _drain(sqs, topology.queue_urls["notifier"])]
    assert len(envelopes) == len(published)
    _put(sqs, topology.delivery_dlq_urls["notifier"], envelopes)

    result = _relay(moto_endpoint, topology, "redrive", "notifier", "--delivery")

    assert result.exit_code == 0, result.output
    assert "Moved 3 " in result.output
    assert sorted(m["Body"] for m in _drain(sqs, topology.queue_urls["notifier"])) == sorted(
        envelopes
    )
    assert _depth(sqs, topology.delivery_dlq_urls["notifier"]) == 0


def test_a_send_failure_mid_redrive_leaves_the_unsent_messages_in_the_dlq(
    topology: Topology, sqs: Any
) -> None:
    bodies = [f"m{i}" for i in range(25)]
    _put(sqs, topology.dlq_urls["tasks"], bodies)
    sends = 0

    def endpoint_goes_away(**_: Any) -> None:
        nonlocal sends
        sends += 1
        if sends == 2:
            raise EndpointConnectionError(endpoint_url="http://sqs")

    sqs.meta.events.register("before-call.sqs.SendMessageBatch", endpoint_goes_away)
    result = move_by_copy(sqs, topology.dlq_urls["tasks"], topology.queue_urls["tasks"])
    sqs.meta.events.unregister("before-call.sqs.SendMessageBatch", endpoint_goes_away)

    assert result.moved == 10
    assert result.stopped is not None
    assert "sending to the queue failed" in result.stopped
    moved = [m["Body"] for m in _drain(sqs, topology.queue_urls["tasks"])]
    # the unsent batch was handed back at once, not after its visibility timeout
    left = [m["Body"] for m in _drain(sqs, topology.dlq_urls["tasks"])]
    assert len(moved) == 10
    assert sorted(moved + left) == sorted(bodies)  # nothing lost, nothing twice
