"""Webhook delivery: the worker that sends due deliveries, and ``decide``, what an attempt's
result means for the delivery (retry when, or give up) and for its endpoint (disable or not).

Deliveries wait in the store with a due time (ADR 0013), so a retry an hour away holds no
worker, no connection and no queue message. The worker claims due ones (a claim moves the due
time past the attempt's lease, so a worker that dies mid-attempt leaves it due again: at least
once, same ``webhook-id``), sends each on its own task within a bound per replica, per endpoint
and per tenant, and records the outcome. A slow endpoint holds at most ``endpoint_concurrency``
of a replica's ``concurrency`` attempts, a tenant at most ``tenant_concurrency`` (so one tenant's
many dead endpoints cannot take every slot), and retries back off, so the others keep flowing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import psycopg
from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import SpanKind, Status, StatusCode

from notifier.models import DeliveryStatus
from notifier.ports import Clock, WebhookSender, WebhookStore
from notifier.signing import SecretBox, SecretsUnreadable, signature_headers
from notifier.webhook_records import (
    AttemptOutcome,
    AttemptResult,
    ClaimBounds,
    ClaimedDelivery,
)
from relay_shared.tracing import from_traceparent, tracer

log = logging.getLogger(__name__)

_meter = metrics.get_meter("relay")
DELIVERIES = _meter.create_counter(
    "relay.webhooks.deliveries",
    description="Webhook attempts by outcome: succeeded, retrying, failed, disabled.",
)
ATTEMPT_DURATION = _meter.create_histogram(
    "relay.webhooks.attempt.duration",
    unit="s",
    description="How long one webhook attempt took, answer or not.",
    # seconds: the SDK's default bounds (0, 5, 10, ... 10000) suit milliseconds
    explicit_bucket_boundaries_advisory=(
        0.005,
        0.01,
        0.025,
        0.05,
        0.1,
        0.25,
        0.5,
        1,
        2.5,
        5,
        10,
        30,
    ),
)
BACKLOG_COUNT_SECONDS = 10.0  # the gauge's count is refreshed at most this often
_backlog: dict[str, int] = {}  # env -> due deliveries, as the worker last counted them


def _observe_backlog(options: CallbackOptions) -> list[Observation]:
    return [Observation(count, {"env": env}) for env, count in _backlog.items()]


_meter.create_observable_gauge(
    "relay.webhooks.backlog",
    callbacks=[_observe_backlog],
    description="Webhook deliveries due and not yet sent (counted by the worker each round).",
)


@dataclass(frozen=True)
class DeliveryPolicy:
    retry_delays: Sequence[float]  # seconds before each retry; then the delivery fails
    disable_after: timedelta  # failing this long, an endpoint is disabled
    secret_overlap: timedelta  # the old secret keeps signing this long after a rotation
    timeout_seconds: float
    concurrency: int
    endpoint_concurrency: int
    tenant_concurrency: int
    poll_interval_seconds: float

    @property
    def lease_seconds(self) -> float:
        """How long a claimed delivery stays out of the due set: the attempt's whole budget
        plus room to record its outcome."""
        return self.timeout_seconds + 30.0


def decide(
    delivery: ClaimedDelivery,
    result: AttemptResult,
    *,
    now: datetime,
    policy: DeliveryPolicy,
    jitter: Callable[[float], float] = lambda delay: delay * random.uniform(1.0, 1.1),  # noqa: S311 - jitter
) -> AttemptOutcome:
    """What an attempt's result means: success; ``410 Gone`` (fail, disable the endpoint); or a
    failure, retried after the next delay unless none is left, and disabling the endpoint once
    it has failed for ``disable_after``."""
    if result.succeeded:
        return AttemptOutcome(now, result, DeliveryStatus.SUCCEEDED, None, None)
    if result.gone:
        reason = f"the endpoint answered 410 Gone on {now:%Y-%m-%d %H:%M:%S} UTC"
        return AttemptOutcome(now, result, DeliveryStatus.FAILED, None, reason)
    failing_since = delivery.failing_since or now
    disable_reason = None
    if now - failing_since >= policy.disable_after:
        disable_reason = (
            f"no successful delivery since {failing_since:%Y-%m-%d %H:%M:%S} UTC "
            f"(last: {describe(result)})"
        )
    made = delivery.attempts + 1
    if made > len(policy.retry_delays):
        return AttemptOutcome(now, result, DeliveryStatus.FAILED, None, disable_reason)
    delay = jitter(policy.retry_delays[made - 1])
    return AttemptOutcome(
        now, result, DeliveryStatus.PENDING, now + timedelta(seconds=delay), disable_reason
    )


def describe(result: AttemptResult) -> str:
    if result.status_code is not None:
        return f"HTTP {result.status_code}"
    return result.error or "no answer"


def outcome_label(outcome: AttemptOutcome) -> str:
    if outcome.disable_reason is not None:
        return "disabled"
    if outcome.status is DeliveryStatus.PENDING:
        return "retrying"
    return str(outcome.status)


class DeliveryWorker:
    """Sends due webhook deliveries until stopped (a ``Loop``)."""

    def __init__(
        self,
        store: WebhookStore,
        sender: WebhookSender,
        box: SecretBox | None,
        *,
        policy: DeliveryPolicy,
        clock: Clock,
        env: str = "local",
    ) -> None:
        self._env = env
        self._store = store
        self._sender = sender
        self._box = box
        self._policy = policy
        self._clock = clock
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._in_flight: Counter[UUID] = Counter()  # endpoint id -> attempts being made
        self._tenants_in_flight: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        """Deliveries were just queued: look now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        if self._box is None:
            log.warning("webhook deliveries are off: RELAY_WEBHOOKS_ENCRYPTION_KEYS is not set")
            await self._stopping.wait()
            return
        counted_at = -BACKLOG_COUNT_SECONDS
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                try:
                    started = await self.start_due()
                    if time.monotonic() - counted_at >= BACKLOG_COUNT_SECONDS:
                        _backlog[self._env] = await self._store.backlog()
                        counted_at = time.monotonic()
                except (psycopg.Error, OSError) as exc:  # an outage: the next poll tries again
                    log.warning("webhook deliveries: %s", exc)
                    started = 0
                except Exception:
                    log.exception("webhook deliveries: a round failed")
                    started = 0
                if started and self._free_slots():
                    continue  # more may be due: look again at once
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._wake.wait(), timeout=self._policy.poll_interval_seconds
                    )
        finally:
            # attempts in flight finish (their outcome is recorded) within their own timeout
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=self._policy.timeout_seconds + 5)

    def _free_slots(self) -> int:
        return self._policy.concurrency - sum(self._in_flight.values())

    async def start_due(self) -> int:
        """Claim what is due (as many as there are free slots) and start an attempt for each;
        returns how many started."""
        free = self._free_slots()
        if free <= 0:
            return 0
        claimed = await self._store.claim_due(
            ClaimBounds(
                limit=free,
                per_endpoint=self._policy.endpoint_concurrency,
                per_tenant=self._policy.tenant_concurrency,
                endpoints_in_flight=dict(self._in_flight),
                tenants_in_flight=dict(self._tenants_in_flight),
            ),
            lease_seconds=self._policy.lease_seconds,
        )
        for delivery in claimed:
            self._in_flight[delivery.endpoint_id] += 1
            self._tenants_in_flight[delivery.tenant_id] += 1
            task = asyncio.create_task(self._attempt(delivery))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(claimed)

    async def deliver_due(self) -> int:
        """Claim and send what is due now, waiting for every attempt (tests and tools)."""
        total = 0
        while started := await self.start_due():
            total += started
            await asyncio.gather(*self._tasks)
        return total

    async def _attempt(self, delivery: ClaimedDelivery) -> None:
        try:
            await self.attempt(delivery)
        except Exception:
            # the claim's lease runs out and the delivery is due again
            log.exception("webhook delivery %s: the attempt could not be recorded", delivery.id)
        finally:
            self._in_flight -= Counter({delivery.endpoint_id: 1})  # drops counts at zero
            self._tenants_in_flight -= Counter({delivery.tenant_id: 1})
            self._wake.set()  # a slot is free

    async def attempt(self, delivery: ClaimedDelivery) -> AttemptOutcome:
        """Sign, send and record one attempt, in a span that continues the event's trace."""
        with tracer().start_as_current_span(
            "webhook deliver",
            context=from_traceparent(delivery.traceparent),
            kind=SpanKind.CLIENT,
            attributes={
                "relay.webhook.endpoint_id": str(delivery.endpoint_id),
                "relay.webhook.delivery_id": str(delivery.id),
                "relay.event.type": delivery.type,
                "relay.webhook.attempt": delivery.attempts + 1,
                **({"relay.task_id": str(delivery.task_id)} if delivery.task_id else {}),
            },
        ) as span:
            result = await self._send(delivery)
            outcome = decide(delivery, result, now=self._clock(), policy=self._policy)
            await self._store.record_outcome(delivery, outcome)
            label = outcome_label(outcome)
            DELIVERIES.add(1, {"outcome": label})
            ATTEMPT_DURATION.record(result.duration_seconds, {"outcome": label})
            if result.status_code is not None:
                span.set_attribute("http.response.status_code", result.status_code)
            if not result.succeeded:
                span.set_status(Status(StatusCode.ERROR, describe(result)))
            if outcome.disable_reason:
                log.warning(
                    "webhook endpoint %s of tenant %s disabled: %s",
                    delivery.endpoint_id,
                    delivery.tenant_id,
                    outcome.disable_reason,
                )
            return outcome

    async def _send(self, delivery: ClaimedDelivery) -> AttemptResult:
        try:
            secrets = self._secrets(delivery)
        except SecretsUnreadable as exc:
            return AttemptResult(None, str(exc), 0.0)
        now = self._clock()
        headers = {
            "content-type": "application/json",
            "user-agent": "Relay-Webhooks/1",
            **signature_headers(str(delivery.event_id), now, delivery.body, secrets),
        }
        return await self._sender.send(delivery.url, headers, delivery.body.encode())

    def _secrets(self, delivery: ClaimedDelivery) -> list[str]:
        """The current secret, and the previous one while it overlaps."""
        assert self._box is not None  # run() does not start without one
        live = [self._box.open(delivery.sealed_secret)]
        expires = delivery.previous_secret_expires_at
        if delivery.sealed_previous_secret and expires and expires > self._clock():
            live.append(self._box.open(delivery.sealed_previous_secret))
        return live
