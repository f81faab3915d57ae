"""Dead-letter queues: what is in them, and moving it back once its cause is fixed.

Every queue of the routing declaration has two: ``<queue>-dlq`` holds messages its consumer failed
to process maxReceiveCount times, ``<queue>-delivery-dlq`` events EventBridge could not deliver to
the queue. A redrive is at-least-once (a message may be sent twice, never lost); consumers' inboxes
make the repeat a no-op.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from relay_ops.routing import MAIN, Routing, delivery_dlq_name, dlq_name, load_routing, queue_name
from relay_ops.stack.environment import DUMMY_AWS_CREDENTIALS
from relay_shared.consumer import envelope_fields

BATCH = 10  # SQS's limit per receive, send and delete call
MAX_BATCH_BYTES = 256 * 1024  # SendMessageBatch's limit for all entries together
PEEK_VISIBILITY_SECONDS = (
    30  # how long a peeked message hides, should we die before handing it back
)
REDRIVE_VISIBILITY_SECONDS = 60  # covers one batch's send and delete
MOVE_TASK_POLL_SECONDS = 2.0
# An API the endpoint does not have: moto answers StartMessageMoveTask with a bare 500.
_UNSUPPORTED_CODES = frozenset(
    {
        "InvalidAction",
        "UnknownOperationException",
        "UnsupportedOperation",
        "AWS.SimpleQueueService.UnsupportedOperation",
        "NotImplemented",
    }
)
_MISSING_QUEUE_CODES = frozenset(
    {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NonExistentQueue"}
)


# --- where ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """The AWS account and deployment the commands act on."""

    env: str
    region: str
    endpoint_url: str | None  # None: real AWS
    credentials: Mapping[str, str] = field(default_factory=dict)  # empty: the standard chain

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            config=Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard"}),
            **{name.lower(): value for name, value in self.credentials.items()},
        )


def resolve_target(
    *,
    endpoint_url: str | None = None,
    env: str | None = None,
    environ: Mapping[str, str] = os.environ,
    stack: Mapping[str, Any] | None = None,
    default_region: str = "us-east-1",
) -> Target:
    """What the user named wins (options, then RELAY_* variables), then the running local
    stack (its record, ``stack``), then real AWS. An empty endpoint means real AWS even while a
    local stack runs."""
    if endpoint_url is None:
        endpoint_url = environ.get("RELAY_AWS_ENDPOINT_URL")
    if endpoint_url is None and stack is not None:
        endpoint_url = str(stack["moto_endpoint"])
    env = (
        env
        or environ.get("RELAY_ENV")
        or environ.get("RELAY_STACK_ENV")
        or (str(stack["env"]) if stack is not None else "local")
    )
    region = environ.get("RELAY_AWS_REGION") or environ.get("AWS_REGION") or default_region
    # an endpoint is moto (or another stand-in), which takes any credentials; AWS gets the chain
    use_dummy = bool(endpoint_url) and "AWS_ACCESS_KEY_ID" not in environ
    return Target(
        env=env,
        region=region,
        endpoint_url=endpoint_url or None,
        credentials=DUMMY_AWS_CREDENTIALS if use_dummy else {},
    )


@dataclass(frozen=True)
class QueueNames:
    """One queue of the routing declaration and its two dead-letter queues."""

    service: str
    kind: str
    queue: str
    dlq: str
    delivery_dlq: str

    @classmethod
    def of(cls, env: str, service: str, kind: str = MAIN) -> QueueNames:
        return cls(
            service=service,
            kind=kind,
            queue=queue_name(env, service, kind),
            dlq=dlq_name(env, service, kind),
            delivery_dlq=delivery_dlq_name(env, service, kind),
        )

    def dead(self, *, delivery: bool) -> str:
        return self.delivery_dlq if delivery else self.dlq


def declared_queues(env: str, routing: Routing | None = None) -> list[QueueNames]:
    routing = routing or load_routing()
    return [QueueNames.of(env, service, kind) for service, kind in routing.queues()]


class MissingQueue(LookupError):
    pass


def url_of(sqs: Any, name: str) -> str:
    try:
        url: str = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _MISSING_QUEUE_CODES:
            raise MissingQueue(name) from exc
        raise
    return url


def arn_of(sqs: Any, url: str) -> str:
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return arn


# --- list -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueDepths:
    """None wherever the queue does not exist."""

    names: QueueNames
    waiting: int | None  # visible or delayed in the queue itself
    in_flight: int | None  # received, not yet deleted
    oldest_age_seconds: float | None  # None also when CloudWatch has no figure
    dead: int | None
    undeliverable: int | None

    @property
    def missing(self) -> list[str]:
        named = [
            (self.waiting, self.names.queue),
            (self.dead, self.names.dlq),
            (self.undeliverable, self.names.delivery_dlq),
        ]
        return [name for depth, name in named if depth is None]


def queue_depths(sqs: Any, cloudwatch: Any, queues: Sequence[QueueNames]) -> list[QueueDepths]:
    ages = oldest_ages(cloudwatch, [q.queue for q in queues])
    out: list[QueueDepths] = []
    for names in queues:
        main = _counts(sqs, names.queue)
        dead = _counts(sqs, names.dlq)
        undeliverable = _counts(sqs, names.delivery_dlq)
        out.append(
            QueueDepths(
                names=names,
                waiting=None if main is None else main[0] + main[2],
                in_flight=None if main is None else main[1],
                oldest_age_seconds=ages.get(names.queue),
                # a message being peeked or redriven is still in the DLQ
                dead=None if dead is None else dead[0] + dead[1],
                undeliverable=None if undeliverable is None else sum(undeliverable[:2]),
            )
        )
    return out


def _counts(sqs: Any, name: str) -> tuple[int, int, int] | None:
    """(visible, in flight, delayed), or None when the queue does not exist."""
    try:
        url = url_of(sqs, name)
    except MissingQueue:
        return None
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return (
        int(attributes.get("ApproximateNumberOfMessages", 0)),
        int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
    )


def oldest_ages(cloudwatch: Any, queues: Sequence[str]) -> dict[str, float]:
    """The latest ApproximateAgeOfOldestMessage per queue. SQS has no queue attribute for it
    (and peeking would count as a receive), so the figure comes from CloudWatch, where SQS
    publishes it every minute; a queue without a recent figure is left out."""
    if not queues:
        return {}
    now = datetime.now(UTC)
    queries = [
        {
            "Id": f"q{i}",
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/SQS",
                    "MetricName": "ApproximateAgeOfOldestMessage",
                    "Dimensions": [{"Name": "QueueName", "Value": name}],
                },
                "Period": 60,
                "Stat": "Maximum",
            },
        }
        for i, name in enumerate(queues)
    ]
    try:
        results = cloudwatch.get_metric_data(
            MetricDataQueries=queries,
            StartTime=now - timedelta(minutes=15),
            EndTime=now + timedelta(minutes=1),
            ScanBy="TimestampDescending",
        )["MetricDataResults"]
    except Exception:  # no CloudWatch (or no permission for it): the age is simply unknown
        return {}
    ages: dict[str, float] = {}
    for result in results:
        values = result.get("Values") or []
        if values:
            ages[queues[int(result["Id"][1:])]] = float(values[0])
    return ages


# --- show -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadMessage:
    message_id: str
    body: str
    receive_count: int
    first_sent: datetime | None
    event: Mapping[str, str]  # detail-type, event_id, task_id, tenant_id: what the body tells
    attributes: Mapping[str, Any]  # message attributes, as SQS returns them

    @classmethod
    def from_sqs(cls, message: Mapping[str, Any]) -> DeadMessage:
        system = message.get("Attributes", {})
        sent = system.get("SentTimestamp")
        return cls(
            message_id=message["MessageId"],
            body=message["Body"],
            receive_count=int(system.get("ApproximateReceiveCount", 0)),
            first_sent=datetime.fromtimestamp(int(sent) / 1000, UTC) if sent else None,
            event=envelope_fields(message["Body"]),
            attributes=message.get("MessageAttributes", {}),
        )

    @property
    def delivery_error(self) -> str | None:
        """Why EventBridge could not deliver it (the attributes it sets on a target's DLQ)."""
        code, text = (
            self.attributes.get(name, {}).get("StringValue")
            for name in ("ERROR_CODE", "ERROR_MESSAGE")
        )
        if code is None and text is None:
            return None
        return ": ".join(part for part in (code, text) if part)


def peek(sqs: Any, url: str, *, limit: int) -> list[DeadMessage]:
    """Up to ``limit`` messages, left in the queue. Each is received (hidden while we collect
    the rest, so none is read twice) and then made visible again at once. A receive adds one to
    its ApproximateReceiveCount, which is harmless in a DLQ: it has no redrive policy."""
    seen: dict[str, DeadMessage] = {}
    held: list[str] = []
    try:
        while len(seen) < limit:
            messages = _receive(sqs, url, min(BATCH, limit - len(seen)), PEEK_VISIBILITY_SECONDS)
            if not messages:
                break
            for message in messages:
                held.append(message["ReceiptHandle"])
                seen.setdefault(message["MessageId"], DeadMessage.from_sqs(message))
    finally:
        _release(sqs, url, held)
    return list(seen.values())


def _receive(sqs: Any, url: str, count: int, visibility: int) -> list[dict[str, Any]]:
    response = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=count,
        VisibilityTimeout=visibility,
        WaitTimeSeconds=1,  # a short long poll asks every server: an empty answer means empty
        MessageSystemAttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    messages: list[dict[str, Any]] = response.get("Messages", [])
    return messages


def _release(sqs: Any, url: str, handles: Sequence[str]) -> None:
    """Make received messages visible again now (best effort: else when their timeout ends)."""
    for start in range(0, len(handles), BATCH):
        entries = [
            {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
            for i, handle in enumerate(handles[start : start + BATCH])
        ]
        with contextlib.suppress(ClientError, BotoCoreError):
            sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)


# --- redrive --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RedriveResult:
    moved: int
    method: str  # "StartMessageMoveTask" or "receive-send-delete"
    stopped: str | None = None  # why it stopped early; what was not moved is still in the DLQ


MOVE_TASK = "StartMessageMoveTask"
COPY = "receive-send-delete"


def redrive(
    sqs: Any,
    dead_url: str,
    queue_url: str,
    *,
    limit: int | None = None,
    move_task: bool = True,
    poll_seconds: float = MOVE_TASK_POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> RedriveResult:
    """Move dead messages back to the queue they came from.

    SQS's own move task where it can do the job: it moves everything, so not with ``limit``,
    and only from a queue's own DLQ (``move_task=False`` for a delivery DLQ, whose source is
    EventBridge). Otherwise, or where the endpoint lacks the API, a receive-send-delete copy.
    """
    if move_task and limit is None:
        result = move_with_task(
            sqs, arn_of(sqs, dead_url), arn_of(sqs, queue_url), poll_seconds, sleep
        )
        if result is not None:
            return result
    return move_by_copy(sqs, dead_url, queue_url, limit=limit)


def move_with_task(
    sqs: Any,
    dead_arn: str,
    queue_arn: str,
    poll_seconds: float = MOVE_TASK_POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> RedriveResult | None:
    """Start SQS's message move task and wait for it; None where the endpoint lacks the API."""
    try:
        sqs.start_message_move_task(SourceArn=dead_arn, DestinationArn=queue_arn)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        http_status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if error.get("Code") in _UNSUPPORTED_CODES or http_status in {500, 501}:
            return None
        raise
    while True:
        # Most recent first, and a queue has at most one running: ours is the first.
        tasks = sqs.list_message_move_tasks(SourceArn=dead_arn, MaxResults=1)["Results"]
        task = tasks[0] if tasks else {}
        status = task.get("Status")
        if status not in {"RUNNING", "CANCELLING"}:
            moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
            stopped = None
            if status != "COMPLETED":
                stopped = f"the move task ended {status}: {task.get('FailureReason', 'no reason')}"
            return RedriveResult(moved=moved, method=MOVE_TASK, stopped=stopped)
        sleep(poll_seconds)


def move_by_copy(
    sqs: Any, dead_url: str, queue_url: str, *, limit: int | None = None
) -> RedriveResult:
    """Receive from the DLQ, send to the queue, and delete from the DLQ only what was sent.

    A failure stops the run: what was not sent is made visible in the DLQ again. A message sent
    whose delete then failed comes back to the DLQ and a later redrive sends it again
    (at-least-once).
    """
    moved = 0
    sent_as: set[str] = set()  # message ids of our copies: back in the DLQ means it failed again
    while limit is None or moved < limit:
        want = BATCH if limit is None else min(BATCH, limit - moved)
        pending = _receive(sqs, dead_url, want, REDRIVE_VISIBILITY_SECONDS)
        if not pending:
            break
        stopped: str | None = None
        if any(m["MessageId"] in sent_as for m in pending):
            stopped = "a redriven message failed again and is back in the DLQ"
        for group in [] if stopped else _send_groups(pending):
            try:
                response = sqs.send_message_batch(
                    QueueUrl=queue_url, Entries=[_copy_entry(i, m) for i, m in enumerate(group)]
                )
            except Exception as exc:
                stopped = f"sending to the queue failed: {exc}"
                break
            sent = {entry["Id"]: entry["MessageId"] for entry in response.get("Successful", [])}
            sent_as.update(sent.values())
            done = [m for i, m in enumerate(group) if str(i) in sent]
            pending = [m for m in pending if m not in done]
            try:
                _delete(sqs, dead_url, done)
            except Exception as exc:
                moved += len(done)
                stopped = f"sent, but not all deleted from the DLQ: {exc}"
                break
            moved += len(done)
            if failed := response.get("Failed", []):
                reasons = sorted({f"{f.get('Code')}: {f.get('Message')}" for f in failed})
                stopped = f"the queue refused {len(failed)}: {'; '.join(reasons)}"
                break
        if stopped:
            _release(sqs, dead_url, [m["ReceiptHandle"] for m in pending])
            return RedriveResult(moved, COPY, stopped=stopped)
    return RedriveResult(moved, COPY)


def _copy_entry(index: int, message: Mapping[str, Any]) -> dict[str, Any]:
    """The same body and message attributes, as SendMessageBatch takes them."""
    entry: dict[str, Any] = {"Id": str(index), "MessageBody": message["Body"]}
    attributes = {
        name: {k: v for k, v in value.items() if k in {"DataType", "StringValue", "BinaryValue"}}
        for name, value in message.get("MessageAttributes", {}).items()
    }
    if attributes:
        entry["MessageAttributes"] = attributes
    return entry


def _send_groups(messages: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Split into SendMessageBatch calls under its size limit for all entries together."""
    groups: list[list[dict[str, Any]]] = []
    size = 0
    for message in messages:
        entry = _copy_entry(0, message)
        entry_size = len(entry["MessageBody"].encode()) + sum(
            len(name) + len(str(value))
            for name, value in entry.get("MessageAttributes", {}).items()
        )
        if not groups or size + entry_size > MAX_BATCH_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(message)
        size += entry_size
    return groups


def _delete(sqs: Any, url: str, messages: Sequence[Mapping[str, Any]]) -> None:
    if not messages:
        return
    response = sqs.delete_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
        ],
    )
    if response.get("Failed"):
        raise RuntimeError(f"{len(response['Failed'])} deletes refused: {response['Failed']}")
