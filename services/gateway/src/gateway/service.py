"""What the public API does: tell who is calling from their API key, and send each request of a
tenant to the service that owns the object.

Nothing under a task is reached before the tasks service confirms the task is this tenant's, so
another tenant's task answers 404 on every route (the owning services check the tenant again).
Webhook endpoints are the notifier's alone: it answers 404 for another tenant's endpoint (and
for another tenant's task in a replay), from the tenant in the gateway's token.
Client errors from a service reach the client unchanged; its failures become 502/503 problems
that say nothing about the inside.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from urllib.parse import quote
from uuid import UUID

from cachetools import LRUCache

from gateway.keys import looks_like_key
from gateway.links import SharedLive
from gateway.ports import InternalServices, KeyStore, LiveChannel, ReplyStream, Tickets
from gateway.rate_limits import Admission, RateLimits
from gateway.tickets import TicketsUnavailable, looks_like_ticket
from gateway.timelines import SharedTimelines
from gateway.upstream import InternalCall, InternalReply, ServiceUnreachable
from relay_shared.problems import Problem

log = logging.getLogger(__name__)

# Tasks a gateway remembers as confirmed to be a tenant's (the least recently followed dropped):
# a task's tenant never changes, so a confirmation holds for good; a refusal is never remembered.
CONFIRMED_TASKS = 10_000

# An internal service refusing the gateway's own token is the gateway's fault, not the client's.
_NOT_THE_CLIENTS_FAULT = frozenset({401, 403, 407})


def subscribed_task(text: str) -> UUID | None:
    """The task a live connection's ``subscribe`` frame names; None for anything else."""
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(frame, dict) or frame.get("type") != "subscribe":
        return None
    task_id = frame.get("task_id")
    if not isinstance(task_id, str):
        return None
    try:
        return UUID(task_id)
    except ValueError:
        return None


class Refused(Exception):
    """An internal service's client-error answer (4xx), to relay to the client unchanged."""

    def __init__(self, reply: InternalReply) -> None:
        super().__init__(f"refused with {reply.status}")
        self.reply = reply


def _bad_gateway() -> Problem:
    return Problem(502, "Bad Gateway", "An internal service failed to answer; try again later.")


def _is_success(status: int) -> bool:
    return 200 <= status < 300


def refusal(call: InternalCall, reply: InternalReply) -> Exception:
    """What the client should see for a reply that is not a success."""
    if 400 <= reply.status < 500 and reply.status not in _NOT_THE_CLIENTS_FAULT:
        return Refused(reply)
    if reply.status == 503:
        # starting, or waiting for one of its dependencies: temporary, and the client may retry
        log.warning("%s %s %s is unavailable for now", call.service, call.method, call.path)
        return _unavailable(reply.header("retry-after") or "2")
    log.error("%s %s %s answered %s", call.service, call.method, call.path, reply.status)
    return _bad_gateway()


def _unavailable(retry_after: str = "2") -> Problem:
    return Problem(
        503,
        "Service Unavailable",
        "An internal service is not answering; try again shortly.",
        headers={"Retry-After": retry_after},
    )


class Gateway:
    """The gateway's use cases, built once by the composition root."""

    def __init__(
        self,
        keys: KeyStore,
        services: InternalServices,
        tickets: Tickets,
        rate_limits: RateLimits,
        *,
        ticket_ttl_seconds: int = 30,
        send_queue_frames: int = 100,
        send_timeout_seconds: float = 10.0,
        max_subscriptions: int = 100,
    ) -> None:
        # per live connection (live.py)
        self.send_queue_frames = send_queue_frames
        self.send_timeout_seconds = send_timeout_seconds
        self._keys = keys
        self._services = services
        self._tickets = tickets
        self.rate_limits = rate_limits
        self.ticket_ttl_seconds = ticket_ttl_seconds
        self._confirmed: LRUCache[tuple[str, UUID], bool] = LRUCache(CONFIRMED_TASKS)
        self.timelines = SharedTimelines()
        self.max_subscriptions = max_subscriptions
        self.live = SharedLive(kept=self.timelines.kept, capacity=max_subscriptions)

    async def admit(self, tenant_id: str, *, submit: bool = False) -> Admission:
        """Count one request of the tenant against its request rate (and its submit rate when
        ``submit``); the answer says whether it may go on and what the headers are."""
        return await self.rate_limits.admit(tenant_id, submit=submit)

    async def tenant_for(self, raw_key: str) -> str | None:
        """The tenant owning this live API key, or None; raises KeyStoreUnavailable."""
        if not looks_like_key(raw_key):
            return None  # cheap shape check, so junk never reaches the key store
        return await self._keys.tenant_for(raw_key)

    async def issue_ticket(self, tenant_id: str) -> str:
        """A new ticket for one live connection of this tenant."""
        try:
            return await self._tickets.issue(tenant_id, ttl_seconds=self.ticket_ttl_seconds)
        except TicketsUnavailable as exc:
            log.error("ticket store unavailable: %s", exc)
            raise _unavailable() from exc

    async def tenant_for_ticket(self, ticket: str) -> str | None:
        """The tenant a ticket was issued to, once; None for an unknown, used or expired one;
        raises TicketsUnavailable."""
        if not looks_like_ticket(ticket):
            return None
        return await self._tickets.redeem(ticket)

    async def owns_task(self, tenant_id: str, task_id: UUID) -> bool:
        """Whether the task is this tenant's (asks tasks); raises a Problem when tasks cannot
        say."""
        try:
            await self._confirm_task(tenant_id, task_id)
        except Problem as problem:
            if problem.status == 404:
                return False
            raise
        return True

    async def subscribe_refusal(self, tenant_id: str, frame: str) -> Problem | None:
        """For a ``subscribe`` frame naming a task: why the tenant may not follow it (not its
        task: 404; tasks cannot say now: that answer), or None. None for any other frame: the
        notifier answers the frames it cannot read."""
        task_id = subscribed_task(frame)
        return None if task_id is None else await self.task_refusal(tenant_id, task_id)

    async def task_refusal(self, tenant_id: str, task_id: UUID) -> Problem | None:
        """Why the tenant may not follow the task (not its task: 404; tasks cannot say now:
        that answer), or None."""
        try:
            owned = await self.owns_task(tenant_id, task_id)
        except Problem as problem:
            return problem
        except Refused as refused:
            return Problem(refused.reply.status, "Refused", "Tasks refused.")
        return None if owned else Problem(404, "Not Found", f"No task {task_id}.")

    async def open_live(self, tenant_id: str) -> LiveChannel:
        """A live connection to the notifier for this tenant; the caller closes it."""
        call = InternalCall("notifier", "GET", "/internal/ws", tenant_id)
        try:
            return await self._services.connect(call)
        except ServiceUnreachable as exc:
            raise _unavailable() from exc

    async def _send(self, call: InternalCall) -> InternalReply:
        try:
            reply = await self._services.send(call)
        except ServiceUnreachable as exc:
            raise _unavailable() from exc
        if not _is_success(reply.status):
            raise refusal(call, reply)
        return reply

    async def _send_for_task(self, call: InternalCall, task_id: UUID) -> InternalReply:
        """``_send`` for a call about one task, which answers 404 when tasks knows no such task
        for this tenant."""
        try:
            return await self._send(call)
        except Refused as refused:
            if refused.reply.status == 404:
                # the gateway's own answer: the path in the tasks service's problem is internal
                raise Problem(404, "Not Found", f"No task {task_id}.") from refused
            raise

    async def _confirm_task(self, tenant_id: str, task_id: UUID) -> None:
        """``_require_task`` where the task itself is not needed: once tasks has confirmed a
        task as the tenant's, this gateway does not ask again. A thousand clients following
        one task cost tasks one lookup, not a thousand; the notifier checks the tenant of
        every stream and subscription itself all the same."""
        if self._confirmed.get((tenant_id, task_id)):
            return
        await self._require_task(tenant_id, task_id)
        self._confirmed[(tenant_id, task_id)] = True

    async def _require_task(self, tenant_id: str, task_id: UUID) -> InternalReply:
        call = InternalCall("tasks", "GET", f"/internal/tasks/{task_id}", tenant_id)
        return await self._send_for_task(call, task_id)

    async def submit_task(
        self, tenant_id: str, body: bytes, idempotency_key: str | None
    ) -> InternalReply:
        limits = await self.rate_limits.limits_for(tenant_id)
        headers = {"Content-Type": "application/json", **limits.quota_headers()}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return await self._send(
            InternalCall("tasks", "POST", "/internal/tasks", tenant_id, headers=headers, body=body)
        )

    async def list_tasks(self, tenant_id: str, query: Mapping[str, str]) -> InternalReply:
        return await self._send(
            InternalCall("tasks", "GET", "/internal/tasks", tenant_id, params=query)
        )

    async def get_task(self, tenant_id: str, task_id: UUID) -> InternalReply:
        return await self._require_task(tenant_id, task_id)

    async def cancel_task(self, tenant_id: str, task_id: UUID, body: bytes | None) -> InternalReply:
        """Relay a cancel request; tasks answers 202 (again, if repeated) or 409 once finished."""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        call = InternalCall(
            "tasks",
            "POST",
            f"/internal/tasks/{task_id}/cancel",
            tenant_id,
            headers=headers,
            body=body,
        )
        return await self._send_for_task(call, task_id)

    async def provide_input(self, tenant_id: str, task_id: UUID, body: bytes) -> InternalReply:
        """Relay an answer; tasks answers 202, or 409 when the task waits for none."""
        call = InternalCall(
            "tasks",
            "POST",
            f"/internal/tasks/{task_id}/input",
            tenant_id,
            headers={"Content-Type": "application/json"},
            body=body,
        )
        return await self._send_for_task(call, task_id)

    async def list_artifacts(self, tenant_id: str, task_id: UUID) -> InternalReply:
        await self._require_task(tenant_id, task_id)
        return await self._send(
            InternalCall("artifacts", "GET", f"/internal/tasks/{task_id}/artifacts", tenant_id)
        )

    async def get_artifact(self, tenant_id: str, task_id: UUID, artifact_id: UUID) -> InternalReply:
        await self._require_task(tenant_id, task_id)
        return await self._send(
            InternalCall(
                "artifacts",
                "GET",
                f"/internal/tasks/{task_id}/artifacts/{artifact_id}",
                tenant_id,
            )
        )

    async def artifact_download_url(self, tenant_id: str, task_id: UUID, artifact_id: UUID) -> str:
        reply = await self.get_artifact(tenant_id, task_id, artifact_id)
        try:
            url = reply.json()["download_url"]
        except (ValueError, TypeError, KeyError):
            url = None
        if not isinstance(url, str) or not url:
            log.error("artifact %s came without a download_url", artifact_id)
            raise _bad_gateway()
        return url

    async def open_timeline(
        self, tenant_id: str, task_id: UUID, *, last_event_id: str | None, after: str | None
    ) -> ReplyStream:
        """The task's live event stream (a share of the one this gateway reads from the
        notifier, timelines.py); the caller closes it. ``last_event_id`` wins over ``after``,
        both plain decimal seqs."""
        await self._confirm_task(tenant_id, task_id)
        resume = last_event_id if last_event_id is not None else after
        return await self.timelines.follow(
            (tenant_id, task_id),
            0 if resume is None else int(resume),
            lambda: self._open_notifier_stream(tenant_id, task_id, last_event_id, after),
        )

    async def _open_notifier_stream(
        self, tenant_id: str, task_id: UUID, last_event_id: str | None, after: str | None
    ) -> ReplyStream:
        call = InternalCall(
            "notifier",
            "GET",
            f"/internal/tasks/{task_id}/events",
            tenant_id,
            params={} if after is None else {"last_event_id": after},
            headers={"Accept": "text/event-stream"}
            | ({} if last_event_id is None else {"Last-Event-ID": last_event_id}),
        )
        try:
            stream = await self._services.stream(call)
        except ServiceUnreachable as exc:
            raise _unavailable() from exc
        if _is_success(stream.status):
            return stream
        try:
            reply = InternalReply(stream.status, dict(stream.headers), await stream.read())
        except ServiceUnreachable as exc:
            raise _unavailable() from exc
        finally:
            await stream.aclose()
        raise refusal(call, reply)

    # --- the WebSocket API on the API Gateway edge (lambda_ws.py); the notifier holds the
    # connections and sends every frame, the gateway says whose they are ----------------------

    async def edge_connect(self, tenant_id: str, connection_id: str) -> None:
        await self._send(self._edge_call("PUT", connection_id, tenant_id))

    async def edge_disconnect(self, tenant_id: str, connection_id: str) -> None:
        await self._send(self._edge_call("DELETE", connection_id, tenant_id))

    async def edge_frame(self, tenant_id: str, connection_id: str, frame: str) -> None:
        """Hand a client frame to the notifier, with the refusal of a subscribe to a task that
        is not the tenant's (the notifier sends it as the ``error`` frame, in order)."""
        refusal = await self.subscribe_refusal(tenant_id, frame)
        body = {
            "text": frame,
            "refusal": None
            if refusal is None
            else {"status": refusal.status, "title": refusal.title, "detail": refusal.detail or ""},
        }
        await self._send(
            self._edge_call(
                "POST",
                connection_id,
                tenant_id,
                suffix="/frames",
                body=json.dumps(body).encode(),
            )
        )

    @staticmethod
    def _edge_call(
        method: str,
        connection_id: str,
        tenant_id: str,
        *,
        suffix: str = "",
        body: bytes | None = None,
    ) -> InternalCall:
        path = f"/internal/edge/connections/{quote(connection_id, safe='')}{suffix}"
        headers = {"Content-Type": "application/json"} if body is not None else {}
        return InternalCall("notifier", method, path, tenant_id, headers=headers, body=body)

    # --- webhooks: the notifier owns them; every call names the caller's tenant ---------------

    async def _webhooks(
        self,
        tenant_id: str,
        method: str,
        path: str = "",
        *,
        body: bytes | None = None,
        params: Mapping[str, str] | None = None,
    ) -> InternalReply:
        """Relay one webhook request to the notifier's ``/internal/webhooks{path}``."""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        return await self._send(
            InternalCall(
                "notifier",
                method,
                f"/internal/webhooks{path}",
                tenant_id,
                params=params or {},
                headers=headers,
                body=body,
            )
        )

    async def create_webhook(self, tenant_id: str, body: bytes) -> InternalReply:
        return await self._webhooks(tenant_id, "POST", body=body)

    async def list_webhooks(self, tenant_id: str) -> InternalReply:
        return await self._webhooks(tenant_id, "GET")

    async def get_webhook(self, tenant_id: str, webhook_id: UUID) -> InternalReply:
        return await self._webhooks(tenant_id, "GET", f"/{webhook_id}")

    async def update_webhook(self, tenant_id: str, webhook_id: UUID, body: bytes) -> InternalReply:
        return await self._webhooks(tenant_id, "PATCH", f"/{webhook_id}", body=body)

    async def delete_webhook(self, tenant_id: str, webhook_id: UUID) -> InternalReply:
        return await self._webhooks(tenant_id, "DELETE", f"/{webhook_id}")

    async def rotate_webhook_secret(self, tenant_id: str, webhook_id: UUID) -> InternalReply:
        return await self._webhooks(tenant_id, "POST", f"/{webhook_id}/rotate-secret")

    async def list_webhook_deliveries(
        self, tenant_id: str, webhook_id: UUID, query: Mapping[str, str]
    ) -> InternalReply:
        return await self._webhooks(tenant_id, "GET", f"/{webhook_id}/deliveries", params=query)

    async def replay_webhook(self, tenant_id: str, webhook_id: UUID, body: bytes) -> InternalReply:
        return await self._webhooks(tenant_id, "POST", f"/{webhook_id}/replay", body=body)

    async def send_webhook_test(self, tenant_id: str, webhook_id: UUID) -> InternalReply:
        return await self._webhooks(tenant_id, "POST", f"/{webhook_id}/test")
