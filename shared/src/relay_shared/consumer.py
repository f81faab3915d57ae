"""SQS consumer: long polling, batches, bounded concurrency, deletes only what succeeded.

A message whose handler raises is left on the queue, its visibility shortened for a backed-off
retry; SQS redelivers it and the queue's redrive policy moves it to the DLQ after a bounded
number of receives. Handlers must therefore be safe to run twice (see inbox.py). The failure on
the last receive is logged at ERROR with its reason, since SQS records none in the DLQ.

A message whose handler *defers* it (``Defer``: not its fault, try later) is sent again as a new
message with a delay and the delivered copy deleted, so waiting does not use up the receives
that the redrive policy allows for failures (ADR 0008). The copy counts its deferrals in a
message attribute; past ``max_deferrals`` a deferral is handled like a failure.

``handed_back_until`` says when every message this consumer handed back (deferred, failed, or
left in flight by the process before it) is on the queue again: a reader that must not overtake
a message still waiting there (the notifier's hold sweeper, ADR 0005) waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry import metrics
from opentelemetry.trace import Span

from relay_shared.backoff import Backoff
from relay_shared.events import DomainEvent, parse_event
from relay_shared.logs import log_context
from relay_shared.loops import sleep_until_stopped
from relay_shared.tracing import AWS_TRACE_HEADER as TRACE_HEADER
from relay_shared.tracing import consumer_span, event_attributes, fail

log = logging.getLogger(__name__)

# How long a stopping consumer waits for its last long poll to answer (see
# _hand_back_abandoned_poll).
HAND_BACK_WAIT_SECONDS = 2.0

_meter = metrics.get_meter("relay")
PROCESS_DURATION = _meter.create_histogram(
    "messaging.process.duration",
    unit="s",
    description="Time to handle one message, by queue and outcome.",
)
QUEUE_LAG = _meter.create_histogram(
    "relay.consumer.lag",
    unit="s",
    description="From a message's arrival on the queue to its receipt by a consumer.",
)


@dataclass(frozen=True)
class ReceivedMessage:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    attributes: Mapping[str, str]
    # string-valued message attributes (the bus sets none; a deferred copy carries its count)
    message_attributes: Mapping[str, str] = field(default_factory=dict)

    @property
    def deferrals(self) -> int:
        """How many times this message was deferred and sent again."""
        try:
            return int(self.message_attributes.get(DEFERRALS_ATTRIBUTE, "0"))
        except ValueError:
            return 0


MessageHandler = Callable[[ReceivedMessage], Awaitable[None]]
EventHandler = Callable[[Any], Awaitable[None]]


DEFERRALS_ATTRIBUTE = "relay-deferrals"
MAX_DELAY_SECONDS = 900  # SQS's DelaySeconds limit; a longer deferral is taken in steps


class UnroutableMessage(ValueError):
    """The message is not a catalog event this service handles."""


class Defer(Exception):
    """Raised by a handler that cannot act on the message yet (e.g. another worker holds the
    task, or a dependency is down): the message comes back after ``delay_seconds``. It does
    not count towards the queue's maxReceiveCount unless the consumer's ``max_deferrals`` is
    used up."""

    def __init__(self, delay_seconds: int, reason: str) -> None:
        super().__init__(reason)
        self.delay_seconds = delay_seconds
        self.reason = reason


class EventDispatcher:
    """Routes a bus message to the handler registered for its detail-type."""

    def __init__(self, handlers: Mapping[str, EventHandler]) -> None:
        self.handlers = dict(handlers)

    @property
    def event_names(self) -> frozenset[str]:
        return frozenset(self.handlers)

    async def __call__(self, message: ReceivedMessage) -> None:
        await self.dispatch(decode(message.body))

    async def dispatch(self, event: DomainEvent) -> None:
        handler = self.handlers.get(event.name)
        if handler is None:
            raise UnroutableMessage(f"no handler for {event.name!r}")
        await handler(event)


def envelope_fields(body: str) -> dict[str, str]:
    """What a message says about its event (detail-type, event_id, task_id, tenant_id), as far
    as it can be read: for log lines and DLQ listings, so garbage yields an empty dict."""
    try:
        envelope = json.loads(body)
    except ValueError:
        return {}
    if not isinstance(envelope, dict):
        return {}
    fields: dict[str, str] = {}
    if isinstance(envelope.get("detail-type"), str):
        fields["detail-type"] = envelope["detail-type"]
    detail = envelope.get("detail")
    metadata = detail.get("metadata") if isinstance(detail, dict) else None
    if isinstance(metadata, dict):
        for name in ("event_id", "task_id", "tenant_id"):
            if isinstance(metadata.get(name), str):
                fields[name] = metadata[name]
    return fields


def event_traceparent(body: str) -> str | None:
    """The ``metadata.traceparent`` of the event a message carries, if it can be read."""
    try:
        value = json.loads(body)["detail"]["metadata"]["traceparent"]
    except (ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, str) else None


def decode(body: str) -> DomainEvent:
    """An EventBridge event, as an SQS target receives it, into its catalog model."""
    try:
        envelope = json.loads(body)
        detail_type, detail = envelope["detail-type"], envelope["detail"]
    except (ValueError, KeyError, TypeError) as exc:
        raise UnroutableMessage(f"not an EventBridge event: {exc}") from exc
    return parse_event(detail_type, detail)


def _utc_after(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


class SqsConsumer:
    def __init__(
        self,
        client: Any,
        queue_url: str,
        handler: MessageHandler,
        *,
        concurrency: int = 8,
        wait_seconds: int = 20,
        visibility_timeout: int = 60,
        max_backoff_seconds: int = 300,
        grace_seconds: float = 30.0,
        max_deferrals: int = 1000,
        delete_linger_seconds: float = 0.0,
        name: str = "consumer",
    ) -> None:
        self._client = client
        self._queue_url = queue_url
        self._handler = handler
        self._slots = asyncio.Semaphore(concurrency)
        self._concurrency = concurrency
        self._wait_seconds = wait_seconds
        self._visibility_timeout = visibility_timeout
        self._grace = grace_seconds
        self._max_deferrals = max_deferrals
        self._delete_linger = delete_linger_seconds
        self._name = name
        self._stopping = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._deletes: asyncio.Queue[str] = asyncio.Queue()
        # the queue's maxReceiveCount; None for a queue without a redrive policy (no limit)
        self._max_receives: int | None = None
        self._redrive_policy_read = False
        self._poll: asyncio.Future[Any] | None = None  # the receive call in flight
        # set once a stopping consumer holds no message any more (run() may still be handing
        # back its abandoned long poll): see relay_shared.loops.Drains
        self._drained = asyncio.Event()
        self._receive_backoff = Backoff(initial=1.0, maximum=30.0)
        self._delete_backoff = Backoff(initial=0.2, maximum=3.2)
        # a failed message stays invisible 2, 4, 8 ... seconds, by its receive count
        self._failure_backoff = Backoff(initial=2, maximum=max_backoff_seconds, jitter=False)
        # A process killed before this one left its messages in flight: they are visible
        # again within one visibility timeout of now.
        self._handed_back_until = _utc_after(visibility_timeout)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def handed_back_until(self) -> datetime:
        """When every message handed back so far is visible on the queue again."""
        return self._handed_back_until

    def _handing_back(self, delay_seconds: float) -> None:
        self._handed_back_until = max(self._handed_back_until, _utc_after(delay_seconds))

    def stop(self) -> None:
        """Stop taking messages; ``run`` returns once in-flight messages are done."""
        self._stopping.set()

    async def drained(self) -> None:
        """Return once a stopping consumer has finished or handed back every message it was
        handling; ``run`` then only waits out its abandoned long poll (loops.Drains)."""
        await self._drained.wait()

    async def run(self, *, grace_seconds: float | None = None) -> None:
        """Receive until ``stop()``; then let in-flight messages finish within the grace period
        and hand the rest back for prompt redelivery (also when this task is cancelled)."""
        grace = self._grace if grace_seconds is None else grace_seconds
        await self._read_redrive_policy()
        deleter = asyncio.create_task(self._delete_loop())
        try:
            await self._receive_loop()
            if self._in_flight:
                await asyncio.wait(set(self._in_flight), timeout=grace)
        finally:
            unfinished = [task for task in self._in_flight if not task.done()]
            for task in unfinished:
                task.cancel()  # each one makes its message visible again (_process)
            await asyncio.gather(*unfinished, return_exceptions=True)
            self._drained.set()
            await self._hand_back_abandoned_poll()
            await self._deletes.join()
            deleter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await deleter

    async def _receive_loop(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            # Only ask for as many messages as there are free slots: a message we hold but
            # cannot start would sit invisible to other replicas.
            await self._slots.acquire()
            free = 1
            while free < min(10, self._concurrency) and not self._slots.locked():
                await self._slots.acquire()
                free += 1
            try:
                messages = await self._receive(free)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                delay = self._receive_backoff.delay(failures)
                log.warning("%s: receive failed (%s); retrying in %.1fs", self._name, exc, delay)
                messages = []
                await sleep_until_stopped(self._stopping, delay)
            for message in messages:
                task = asyncio.create_task(self._process(message))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
            for _ in range(free - len(messages)):
                self._slots.release()

    async def _receive(self, max_messages: int) -> list[ReceivedMessage]:
        receive = asyncio.ensure_future(
            self._client.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=max_messages,
                WaitTimeSeconds=self._wait_seconds,
                VisibilityTimeout=self._visibility_timeout,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
        )
        stopping = asyncio.ensure_future(self._stopping.wait())
        self._poll = receive
        try:
            await asyncio.wait({receive, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not receive.done():
            # Stopping (or cancelled, which skips this): the long poll is left running, and
            # run() hands back whatever it still returns (_hand_back_abandoned_poll).
            return []
        self._poll = None
        response = receive.result()
        now_ms = time.time() * 1000
        for m in response.get("Messages", []):
            sent_ms = m.get("Attributes", {}).get("SentTimestamp")
            if sent_ms:
                QUEUE_LAG.record(
                    max(0.0, (now_ms - int(sent_ms)) / 1000),
                    {"messaging.destination.name": self._name},
                )
        return [
            ReceivedMessage(
                message_id=m["MessageId"],
                receipt_handle=m["ReceiptHandle"],
                body=m["Body"],
                receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
                attributes=m.get("Attributes", {}),
                message_attributes={
                    name: value["StringValue"]
                    for name, value in m.get("MessageAttributes", {}).items()
                    if "StringValue" in value
                },
            )
            for m in response.get("Messages", [])
        ]

    async def _process(self, message: ReceivedMessage) -> None:
        # the heartbeat starts outside the message's span: its calls are not part of the trace
        heartbeat = asyncio.create_task(self._keep_invisible(message))
        fields = envelope_fields(message.body)
        started = time.monotonic()
        outcome = "cancelled"
        try:
            with (
                consumer_span(
                    self._name,
                    message.message_id,
                    aws_trace_header=message.attributes.get(TRACE_HEADER),
                    traceparent=event_traceparent(message.body),
                    attributes=event_attributes(fields),
                ) as span,
                log_context(
                    task_id=fields.get("task_id"),
                    tenant_id=fields.get("tenant_id"),
                    event_id=fields.get("event_id"),
                ),
            ):
                outcome = await self._handle(message, span)
        finally:
            PROCESS_DURATION.record(
                time.monotonic() - started,
                {"messaging.destination.name": self._name, "relay.outcome": outcome},
            )
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            self._slots.release()

    async def _handle(self, message: ReceivedMessage, span: Span) -> str:
        """Run the handler; settle the message by its outcome, which is returned."""
        try:
            await self._handler(message)
        except asyncio.CancelledError:
            # Shutdown grace ran out: hand the message back for prompt redelivery.
            await self._set_visibility(message, 0)
            raise
        except Defer as defer:
            span.add_event("deferred", {"relay.defer.seconds": defer.delay_seconds})
            self._handing_back(defer.delay_seconds)
            await self._defer(message, defer)
            return "deferred"
        except Exception as exc:
            fail(span, exc)
            delay = int(self._failure_backoff.delay(message.receive_count))
            self._handing_back(delay)
            if await self._is_last_receive(message):
                self._log_dead_letter(message, exc)
            else:
                log.warning(
                    "%s: message %s failed on receive %d (%s: %s); retry in %ds",
                    self._name,
                    message.message_id,
                    message.receive_count,
                    type(exc).__name__,
                    exc,
                    delay,
                    exc_info=not isinstance(exc, UnroutableMessage),
                )
            await self._set_visibility(message, delay)
            return "failure"
        await self._deletes.put(message.receipt_handle)
        return "success"

    async def _defer(self, message: ReceivedMessage, defer: Defer) -> None:
        if message.deferrals < self._max_deferrals and await self._send_again(message, defer):
            log.info(
                "%s: message %s deferred %ds (deferral %d): %s",
                self._name,
                message.message_id,
                defer.delay_seconds,
                message.deferrals + 1,
                defer.reason,
            )
            await self._deletes.put(message.receipt_handle)
            return
        # Deferred too often, or AWS refused the copy: wait on this receive, which counts.
        if await self._is_last_receive(message):
            self._log_dead_letter(message, defer)
        else:
            log.info(
                "%s: message %s deferred %ds on receive %d: %s",
                self._name,
                message.message_id,
                defer.delay_seconds,
                message.receive_count,
                defer.reason,
            )
        await self._set_visibility(message, defer.delay_seconds)

    async def _send_again(self, message: ReceivedMessage, defer: Defer) -> bool:
        """Put a copy of ``message`` on the queue, due after the deferral's delay. Sent before
        the delivered copy is deleted: a crash in between leaves two, never none."""
        attributes = {
            name: {"DataType": "String", "StringValue": value}
            for name, value in message.message_attributes.items()
        }
        attributes[DEFERRALS_ATTRIBUTE] = {
            "DataType": "Number",
            "StringValue": str(message.deferrals + 1),
        }
        request: dict[str, Any] = {
            "QueueUrl": self._queue_url,
            "MessageBody": message.body,
            "DelaySeconds": max(0, min(MAX_DELAY_SECONDS, defer.delay_seconds)),
            "MessageAttributes": attributes,
        }
        trace_header = message.attributes.get(TRACE_HEADER)
        if trace_header:
            request["MessageSystemAttributes"] = {
                TRACE_HEADER: {"DataType": "String", "StringValue": trace_header}
            }
        try:
            await self._client.send_message(**request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "%s: could not send deferred message %s again: %s",
                self._name,
                message.message_id,
                exc,
            )
            return False
        return True

    async def _read_redrive_policy(self) -> None:
        """Learn the queue's maxReceiveCount once, to tell a message's last failure from the
        others. Unreadable now (e.g. AWS is away): asked again at the next failure."""
        try:
            response = await self._client.get_queue_attributes(
                QueueUrl=self._queue_url, AttributeNames=["RedrivePolicy"]
            )
            policy = response.get("Attributes", {}).get("RedrivePolicy")
            self._max_receives = int(json.loads(policy)["maxReceiveCount"]) if policy else None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s: could not read the queue's redrive policy: %s", self._name, exc)
            return
        self._redrive_policy_read = True

    async def _is_last_receive(self, message: ReceivedMessage) -> bool:
        """SQS moves a message to the DLQ on the receive after its maxReceiveCount-th."""
        if not self._redrive_policy_read:
            await self._read_redrive_policy()
        return self._max_receives is not None and message.receive_count >= self._max_receives

    def _log_dead_letter(self, message: ReceivedMessage, exc: Exception) -> None:
        fields = envelope_fields(message.body)
        log.error(
            "%s: message %s (%s %s) goes to the DLQ after %d receives: %s: %s",
            self._name,
            message.message_id,
            fields.get("detail-type", "?"),
            fields.get("event_id", "?"),
            message.receive_count,
            type(exc).__name__,
            exc,
            exc_info=not isinstance(exc, UnroutableMessage | Defer),
        )

    async def _keep_invisible(self, message: ReceivedMessage) -> None:
        """Extend visibility while the handler runs, so a long task is not redelivered."""
        while True:
            await asyncio.sleep(self._visibility_timeout / 2)
            await self._set_visibility(message, self._visibility_timeout)

    async def _hand_back_abandoned_poll(self) -> None:
        """A long poll that was still waiting when the consumer stopped can yet receive a
        message, which would then stay invisible for the whole visibility timeout; make what
        it returns visible again at once. Cancelling the call would not help: the server may
        hand the message out all the same. The wait is short, so that an idle long poll does
        not hold up a stop: a poll still open after it is left to the visibility timeout."""
        poll, self._poll = self._poll, None
        if poll is None:
            return
        await asyncio.wait({poll}, timeout=HAND_BACK_WAIT_SECONDS)
        if not poll.done():
            poll.cancel()
            return
        if poll.cancelled() or poll.exception() is not None:
            return
        for m in poll.result().get("Messages", []):
            with contextlib.suppress(Exception):
                await self._client.change_message_visibility(
                    QueueUrl=self._queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                )

    async def _set_visibility(self, message: ReceivedMessage, seconds: int) -> None:
        try:
            await self._client.change_message_visibility(
                QueueUrl=self._queue_url,
                ReceiptHandle=message.receipt_handle,
                VisibilityTimeout=seconds,
            )
        except Exception as exc:
            log.warning(
                "%s: could not change visibility of %s: %s", self._name, message.message_id, exc
            )

    async def _delete_loop(self) -> None:
        """Delete succeeded messages, at most 10 per call: the first one waits up to the linger
        for others to share its call (not once the consumer is stopping)."""
        loop = asyncio.get_running_loop()
        while True:
            handles = [await self._deletes.get()]
            until = loop.time() + self._delete_linger
            while len(handles) < 10:
                if not self._deletes.empty():
                    handles.append(self._deletes.get_nowait())
                    continue
                left = until - loop.time()
                if left <= 0 or self._stopping.is_set():
                    break
                handle = await self._next_delete(left)
                if handle is None:
                    break
                handles.append(handle)
            try:
                await self._delete(handles)
            finally:
                for _ in handles:
                    self._deletes.task_done()

    async def _next_delete(self, within: float) -> str | None:
        """The next handle to delete if one comes within ``within`` seconds and the consumer
        is not told to stop meanwhile; else None."""
        getter = asyncio.ensure_future(self._deletes.get())
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({getter, stopping}, timeout=within, return_when="FIRST_COMPLETED")
        finally:
            stopping.cancel()
            getter.cancel()  # no-op once it has its handle
            # a cancelled get() takes nothing off the queue; let the cancellation land
            await asyncio.gather(getter, stopping, return_exceptions=True)
        return None if getter.cancelled() else getter.result()

    async def _delete(self, handles: list[str]) -> None:
        entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles)]
        for attempt in range(5):
            try:
                response = await self._client.delete_message_batch(
                    QueueUrl=self._queue_url, Entries=entries
                )
            except Exception as exc:
                log.warning("%s: delete failed (%s)", self._name, exc)
            else:
                failed_ids = {f["Id"] for f in response.get("Failed", [])}
                entries = [e for e in entries if e["Id"] in failed_ids]
                if not entries:
                    return
            await asyncio.sleep(self._delete_backoff.delay(attempt + 1))
        # Not deleted: the message comes back and the handler's inbox makes the repeat a no-op.
        log.warning("%s: gave up deleting %d messages", self._name, len(entries))
