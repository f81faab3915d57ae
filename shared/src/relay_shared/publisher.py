"""EventBridge publisher: batches of at most 10 entries, resends only the entries that failed.

Only the outbox relay calls this; services never publish directly (see outbox.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from relay_shared.aws import is_outage

log = logging.getLogger(__name__)

MAX_ENTRIES_PER_CALL = 10
# PutEvents limits each entry, and the whole request, to 256 KiB.
MAX_REQUEST_BYTES = 256 * 1024
# EventBridge counts 14 bytes for the Time field whether or not it is set.
_TIME_FIELD_BYTES = 14


class EventTooLarge(ValueError):
    """The entry is over the PutEvents size limit; it can never be published as it is."""


@dataclass(frozen=True)
class OutboundEvent:
    event_id: str
    source: str
    detail_type: str
    detail: str  # JSON text, exactly what goes on the wire
    trace_header: str | None = None  # X-Ray header; EventBridge hands it on as AWSTraceHeader

    @property
    def size(self) -> int:
        """Entry size as EventBridge computes it."""
        return (
            _TIME_FIELD_BYTES
            + len(self.source.encode())
            + len(self.detail_type.encode())
            + len(self.detail.encode())
        )

    def check_size(self, reserve: int = 0) -> None:
        """Raise if over the limit, keeping ``reserve`` bytes free for what is added later."""
        if self.size + reserve > MAX_REQUEST_BYTES:
            raise EventTooLarge(
                f"event {self.event_id} ({self.detail_type}) is {self.size} bytes; "
                f"the limit is {MAX_REQUEST_BYTES - reserve}"
            )


@dataclass
class PublishOutcome:
    published: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # event_id -> reason
    # Set when a call got no usable answer (EventBridge unreachable, throttled, bus missing):
    # the failed entries are not at fault, so the caller waits rather than backing each off.
    outage: str | None = None


class _EntriesFailed(Exception):
    pass


def batches(events: Sequence[OutboundEvent]) -> list[list[OutboundEvent]]:
    """Split into PutEvents calls: at most 10 entries and 256 KiB per call, order kept."""
    out: list[list[OutboundEvent]] = []
    current: list[OutboundEvent] = []
    current_bytes = 0
    for event in events:
        if current and (
            len(current) == MAX_ENTRIES_PER_CALL or current_bytes + event.size > MAX_REQUEST_BYTES
        ):
            out.append(current)
            current, current_bytes = [], 0
        current.append(event)
        current_bytes += event.size
    if current:
        out.append(current)
    return out


class EventBridgePublisher:
    def __init__(
        self,
        client: Any,
        bus_name: str,
        *,
        max_attempts: int = 4,
        max_backoff_seconds: float = 2.0,
    ) -> None:
        self._client = client
        self._bus_name = bus_name
        self._max_attempts = max_attempts
        self._max_backoff = max_backoff_seconds

    @property
    def bus_name(self) -> str:
        return self._bus_name

    async def publish(self, events: Sequence[OutboundEvent]) -> PublishOutcome:
        """Publish in order. A call that raises stops the run: the rest is reported failed."""
        outcome = PublishOutcome()
        sendable = []
        for event in events:
            try:
                event.check_size()
            except EventTooLarge as exc:
                outcome.failed[event.event_id] = str(exc)
            else:
                sendable.append(event)
        remaining = batches(sendable)
        while remaining:
            batch = remaining.pop(0)
            try:
                await self._send_batch(batch, outcome)
            except Exception as exc:
                log.warning("PutEvents failed: %s", exc)
                if is_outage(exc):
                    outcome.outage = f"{type(exc).__name__}: {exc}"
                for event in [e for b in [batch, *remaining] for e in b]:
                    if event.event_id not in outcome.published:
                        outcome.failed[event.event_id] = f"{type(exc).__name__}: {exc}"
                break
        return outcome

    async def _send_batch(self, batch: list[OutboundEvent], outcome: PublishOutcome) -> None:
        pending = list(batch)
        errors: dict[str, str] = {}
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self._max_attempts),
                wait=wait_random_exponential(multiplier=0.1, max=self._max_backoff),
                retry=retry_if_exception_type(_EntriesFailed),
            ):
                with attempt:
                    response = await self._client.put_events(
                        Entries=[self._entry(e) for e in pending]
                    )
                    # Entries come back in request order; an ErrorCode marks a failed one.
                    still_failing = []
                    for event, result in zip(pending, response["Entries"], strict=True):
                        if result.get("ErrorCode"):
                            errors[event.event_id] = (
                                f"{result['ErrorCode']}: {result.get('ErrorMessage', '')}"
                            )
                            still_failing.append(event)
                        else:
                            outcome.published.append(event.event_id)
                            errors.pop(event.event_id, None)
                    pending = still_failing
                    if pending:
                        raise _EntriesFailed
        except RetryError:
            for event in pending:
                outcome.failed[event.event_id] = errors.get(event.event_id, "failed")

    def _entry(self, event: OutboundEvent) -> dict[str, Any]:
        entry = {
            "EventBusName": self._bus_name,
            "Source": event.source,
            "DetailType": event.detail_type,
            "Detail": event.detail,
        }
        if event.trace_header:
            entry["TraceHeader"] = event.trace_header
        return entry
