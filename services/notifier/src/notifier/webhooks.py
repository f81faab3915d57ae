"""The webhook API's use cases: a tenant's endpoints (create, read, change, delete, rotate the
secret), their delivery log, replay and the test event. Every one is scoped to the caller's
tenant: another tenant's endpoint is ``NotFound``, exactly like a missing one.

Deliveries themselves are queued by the timeline store as events are appended (ports.py) and
sent by the worker (delivery.py)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from notifier.models import (
    TEST_EVENT_TYPE,
    DeliveryStatus,
    NewWebhookEndpointView,
    ReplayQueued,
    ReplayRequest,
    TestQueued,
    WebhookDeliveryPage,
    WebhookEndpointList,
    WebhookEndpointRequest,
    WebhookEndpointUpdate,
    WebhookEndpointView,
    WebhookSecretView,
)
from notifier.ports import Clock, UnsafeTarget, WebhookSender, WebhookStore
from notifier.signing import SecretBox, new_secret
from notifier.webhook_records import DeliveryPosition, EndpointRecord
from relay_shared.problems import Problem

REPLAY_LIMIT = 10_000  # events one replay request may queue


class WebhooksOff(Problem):
    def __init__(self) -> None:
        super().__init__(
            503,
            "Webhooks Unavailable",
            "Webhooks are not configured on this deployment (RELAY_WEBHOOKS_ENCRYPTION_KEYS).",
        )


def not_found(endpoint_id: UUID) -> Problem:
    return Problem(404, "Not Found", f"No webhook endpoint {endpoint_id}.")


def refused_url(reason: str) -> Problem:
    """Shaped like every other validation problem, naming the field."""
    return Problem(
        422,
        "Invalid request",
        f"url: {reason}.",
        errors=[{"location": "body.url", "message": reason, "type": "unsafe_target"}],
    )


def encode_cursor(position: DeliveryPosition) -> str:
    raw = json.dumps([position.created_at.isoformat(), str(position.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> DeliveryPosition:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, delivery_id = json.loads(raw)
        return DeliveryPosition(datetime.fromisoformat(created_at), UUID(delivery_id))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise Problem(
            400,
            "Invalid cursor",
            "The cursor is not one this API returned; pass next_cursor from the previous page.",
        ) from exc


class WebhookService:
    def __init__(
        self,
        store: WebhookStore,
        sender: WebhookSender,
        box: SecretBox | None,
        *,
        clock: Clock,
        secret_overlap_seconds: float,
        max_endpoints: int,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._sender = sender
        self._box = box
        self._clock = clock
        self._overlap = secret_overlap_seconds
        self._max_endpoints = max_endpoints
        self._wake = wake

    def _sealer(self) -> SecretBox:
        if self._box is None:
            raise WebhooksOff()
        return self._box

    async def _endpoint(self, tenant_id: str, endpoint_id: UUID) -> EndpointRecord:
        endpoint = await self._store.endpoint(tenant_id, endpoint_id)
        if endpoint is None:
            raise not_found(endpoint_id)
        return endpoint

    async def _check_url(self, url: str) -> None:
        try:
            await self._sender.check(url)
        except UnsafeTarget as exc:
            raise refused_url(str(exc)) from exc

    async def create(
        self, tenant_id: str, request: WebhookEndpointRequest
    ) -> NewWebhookEndpointView:
        box = self._sealer()
        await self._check_url(request.url)
        secret = new_secret()
        endpoint = EndpointRecord(
            id=uuid4(),
            tenant_id=tenant_id,
            url=request.url,
            event_types=tuple(request.event_types),
            description=request.description,
            created_at=self._clock(),
            sealed_secret=box.seal(secret),
        )
        if not await self._store.add_endpoint(endpoint, max_per_tenant=self._max_endpoints):
            raise Problem(
                409,
                "Too Many Webhook Endpoints",
                f"A tenant may have {self._max_endpoints} webhook endpoints; delete one first.",
            )
        return NewWebhookEndpointView(**endpoint.view().model_dump(), secret=secret)

    async def list(self, tenant_id: str) -> WebhookEndpointList:
        return WebhookEndpointList(items=[e.view() for e in await self._store.endpoints(tenant_id)])

    async def get(self, tenant_id: str, endpoint_id: UUID) -> WebhookEndpointView:
        return (await self._endpoint(tenant_id, endpoint_id)).view()

    async def update(
        self, tenant_id: str, endpoint_id: UUID, changes: WebhookEndpointUpdate
    ) -> WebhookEndpointView:
        if changes.url is not None:
            await self._check_url(changes.url)
        updated = await self._store.update_endpoint(tenant_id, endpoint_id, changes)
        if updated is None:
            raise not_found(endpoint_id)
        if changes.enabled:
            self._wake()  # its pending deliveries are due again
        return updated.view()

    async def delete(self, tenant_id: str, endpoint_id: UUID) -> None:
        if not await self._store.delete_endpoint(tenant_id, endpoint_id):
            raise not_found(endpoint_id)

    async def rotate_secret(self, tenant_id: str, endpoint_id: UUID) -> WebhookSecretView:
        box = self._sealer()
        secret = new_secret()
        until = self._clock() + _seconds(self._overlap)
        if not await self._store.rotate_secret(tenant_id, endpoint_id, box.seal(secret), until):
            raise not_found(endpoint_id)
        return WebhookSecretView(secret=secret, previous_secret_expires_at=until)

    async def deliveries(
        self,
        tenant_id: str,
        endpoint_id: UUID,
        *,
        status: DeliveryStatus | None,
        cursor: str | None,
        limit: int,
    ) -> WebhookDeliveryPage:
        after = decode_cursor(cursor) if cursor is not None else None
        await self._endpoint(tenant_id, endpoint_id)
        rows = await self._store.deliveries(
            tenant_id, endpoint_id, status=status, after=after, limit=limit + 1
        )
        page, more = rows[:limit], len(rows) > limit
        return WebhookDeliveryPage(
            items=[row.view() for row in page],
            next_cursor=encode_cursor(page[-1].position) if more else None,
        )

    async def replay(
        self, tenant_id: str, endpoint_id: UUID, request: ReplayRequest
    ) -> ReplayQueued:
        endpoint = await self._endpoint(tenant_id, endpoint_id)
        if request.task_id is not None:
            queued = await self._store.queue_replay_of_task(
                endpoint, request.task_id, request.after, limit=REPLAY_LIMIT
            )
            if queued is None:
                raise Problem(404, "Not Found", f"No task {request.task_id}.")
        else:
            assert request.since is not None  # the model requires one of the two
            queued = await self._store.queue_replay_since(
                endpoint, request.since, limit=REPLAY_LIMIT
            )
        if queued:
            self._wake()
        return ReplayQueued(queued=queued)

    async def send_test(self, tenant_id: str, endpoint_id: UUID) -> TestQueued:
        self._sealer()
        endpoint = await self._endpoint(tenant_id, endpoint_id)
        event_id = uuid4()
        body = json.dumps(
            {
                "type": TEST_EVENT_TYPE,
                "seq": None,
                "task_id": None,
                "occurred_at": self._clock().isoformat(),
                "data": {"webhook_id": str(endpoint.id)},
                "event_id": str(event_id),
            }
        )
        await self._store.queue_test(endpoint, event_id, body)
        self._wake()
        return TestQueued(event_id=event_id)


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)
