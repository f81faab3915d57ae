"""The StartMessageMoveTask path of `relay dlq redrive`, and where the commands point.

moto lacks the move-task API, so this is the one place an SQS client is faked: an object
answering the calls the path makes, the way AWS documents them."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from relay_ops.dlq import COPY, MOVE_TASK, redrive, resolve_target
from relay_ops.stack.environment import DUMMY_AWS_CREDENTIALS

DLQ_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/relay-prod-agent-dlq"
QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/relay-prod-agent"
DLQ_ARN = "arn:aws:sqs:eu-west-1:123456789012:relay-prod-agent-dlq"
QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:relay-prod-agent"


def _client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "StartMessageMoveTask",
    )


class MoveTaskSqs:
    """SQS with the move-task API: the task runs for ``polls_running`` polls, then ends."""

    def __init__(self, *, polls_running: int = 2, final: dict[str, Any] | None = None) -> None:
        self.started: list[dict[str, Any]] = []
        self.listed: list[dict[str, Any]] = []
        self.received = 0
        self.polls_running = polls_running
        self.final = final or {"Status": "COMPLETED", "ApproximateNumberOfMessagesMoved": 7}
        self.start_error: ClientError | None = None

    def get_queue_attributes(self, *, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:
        arn = {DLQ_URL: DLQ_ARN, QUEUE_URL: QUEUE_ARN}[QueueUrl]
        return {"Attributes": {"QueueArn": arn}}

    def start_message_move_task(self, **kwargs: Any) -> dict[str, Any]:
        if self.start_error is not None:
            raise self.start_error
        self.started.append(kwargs)
        return {"TaskHandle": "handle-1"}

    def list_message_move_tasks(self, **kwargs: Any) -> dict[str, Any]:
        self.listed.append(kwargs)
        if len(self.listed) <= self.polls_running:
            running = {"Status": "RUNNING", "TaskHandle": "handle-1", "SourceArn": DLQ_ARN}
            return {"Results": [{**running, "ApproximateNumberOfMessagesMoved": 3}]}
        return {"Results": [{"SourceArn": DLQ_ARN, **self.final}]}

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        self.received += 1
        return {"Messages": []}  # an empty DLQ, for the fallback


def test_redrive_starts_a_move_task_from_the_dlq_to_the_queue_and_polls_it_to_the_end() -> None:
    sqs = MoveTaskSqs(polls_running=2)
    pauses: list[float] = []

    result = redrive(sqs, DLQ_URL, QUEUE_URL, poll_seconds=1.5, sleep=pauses.append)

    assert sqs.started == [{"SourceArn": DLQ_ARN, "DestinationArn": QUEUE_ARN}]
    assert [call["SourceArn"] for call in sqs.listed] == [DLQ_ARN] * 3
    assert pauses == [1.5, 1.5]  # waited between polls while it ran, not after
    assert (result.method, result.moved, result.stopped) == (MOVE_TASK, 7, None)
    assert sqs.received == 0  # no copying beside the task


def test_a_move_task_that_fails_reports_why() -> None:
    sqs = MoveTaskSqs(
        polls_running=0,
        final={
            "Status": "FAILED",
            "ApproximateNumberOfMessagesMoved": 2,
            "FailureReason": "AccessDenied on the destination",
        },
    )
    result = redrive(sqs, DLQ_URL, QUEUE_URL, sleep=lambda _: None)
    assert result.moved == 2
    assert result.stopped is not None
    assert "FAILED" in result.stopped
    assert "AccessDenied on the destination" in result.stopped


@pytest.mark.parametrize(
    ("code", "status"),
    [("500", 500), ("InvalidAction", 400), ("AWS.SimpleQueueService.UnsupportedOperation", 400)],
)
def test_an_endpoint_without_the_api_gets_the_receive_send_delete_copy(
    code: str, status: int
) -> None:
    sqs = MoveTaskSqs()
    sqs.start_error = _client_error(code, status)
    result = redrive(sqs, DLQ_URL, QUEUE_URL, sleep=lambda _: None)
    assert result.method == COPY
    assert sqs.received == 1
    assert sqs.listed == []


def test_any_other_error_from_the_move_task_is_not_hidden_by_a_copy() -> None:
    sqs = MoveTaskSqs()
    sqs.start_error = _client_error("AccessDenied", 403)
    with pytest.raises(ClientError):
        redrive(sqs, DLQ_URL, QUEUE_URL, sleep=lambda _: None)
    assert sqs.received == 0


def test_a_limit_or_a_delivery_dlq_skips_the_move_task() -> None:
    # the move task moves everything, and takes only a DLQ whose source is an SQS queue
    for kwargs in ({"limit": 5}, {"move_task": False}):
        sqs = MoveTaskSqs()
        result = redrive(sqs, DLQ_URL, QUEUE_URL, sleep=lambda _: None, **kwargs)
        assert (result.method, sqs.started, sqs.received) == (COPY, [], 1)


# --- where the commands point ---------------------------------------------------------------

STACK = {"moto_endpoint": "http://127.0.0.1:5055", "env": "local"}


def test_the_running_local_stack_is_the_default_with_moto_credentials() -> None:
    target = resolve_target(environ={}, stack=STACK)
    assert (target.endpoint_url, target.env, target.region) == (
        "http://127.0.0.1:5055",
        "local",
        "us-east-1",
    )
    assert target.credentials == DUMMY_AWS_CREDENTIALS


def test_what_the_user_names_wins_over_the_running_stack() -> None:
    environ = {
        "RELAY_AWS_ENDPOINT_URL": "http://moto:5000",
        "RELAY_ENV": "staging",
        "AWS_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "mine",
    }
    target = resolve_target(environ=environ, stack=STACK)
    assert (target.endpoint_url, target.env, target.region) == (
        "http://moto:5000",
        "staging",
        "eu-west-1",
    )
    assert target.credentials == {}  # the user's own, through the standard chain
    options = resolve_target(endpoint_url="http://other:1", env="qa", environ=environ, stack=STACK)
    assert (options.endpoint_url, options.env) == ("http://other:1", "qa")
    assert resolve_target(environ={"RELAY_STACK_ENV": "second"}, stack=STACK).env == "second"


def test_without_an_endpoint_or_a_stack_it_is_aws_with_the_standard_chain() -> None:
    target = resolve_target(environ={"RELAY_ENV": "prod"}, stack=None)
    assert (target.endpoint_url, target.env, target.credentials) == (None, "prod", {})
    # an empty endpoint means AWS even while a local stack runs
    assert resolve_target(endpoint_url="", environ={}, stack=STACK).endpoint_url is None
    assert resolve_target(environ={"RELAY_AWS_ENDPOINT_URL": ""}, stack=STACK).endpoint_url is None
