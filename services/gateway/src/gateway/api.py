"""The public API, ``/v1``: read the request, ask the gateway, relay the answer."""

from __future__ import annotations

import json
from typing import Annotated
from urllib.parse import urlsplit
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ValidationError

from gateway.auth import authenticated_tenant, bearer, live_tenant
from gateway.limits import RATE_LIMIT_FIELDS
from gateway.live import relay_live
from gateway.models import (
    ArtifactDownload,
    ArtifactList,
    CancelRequest,
    DeliveryStatus,
    NewTask,
    NewWebhookEndpoint,
    Task,
    TaskInput,
    TaskPage,
    TaskStatus,
    WebhookDeliveryPage,
    WebhookEndpoint,
    WebhookEndpointList,
    WebhookEndpointPatch,
    WebhookEndpointWithSecret,
    WebhookReplayQueued,
    WebhookReplayRequest,
    WebhookSecret,
    WebhookTestQueued,
    WsTicket,
)
from gateway.openapi import CANCEL_BODY, EVENT_STREAM, NEW_TASK_BODY, json_body, problems
from gateway.service import Gateway, Refused
from gateway.streaming import RelayedEventStream
from gateway.upstream import InternalReply
from relay_shared.problems import PROBLEM_JSON, Problem
from relay_shared.sockets import TRY_AGAIN_LATER, UNAUTHENTICATED, close
from relay_shared.tracing import tag_span

# Headers of an internal answer that mean something to the client; the rest stay inside.
RELAYED_HEADERS = ("content-type", "idempotent-replayed", "retry-after")
# A page cursor is unpadded base64url (the tasks service's next_cursor).
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"
# The largest seq there can be: a timeline's seq is a PostgreSQL integer.
MAX_SEQ = 2**31 - 1


async def _gateway(request: Request) -> Gateway:  # async: no worker thread per request
    gateway: Gateway = request.app.state.service
    return gateway


GatewayDep = Annotated[Gateway, Depends(_gateway)]


async def _admitted(request: Request, gateway: Gateway, tenant: str, *, submit: bool) -> str:
    """Count the request against the tenant's rate limits (rate_limits.py): its RateLimit
    fields go on whatever the answer is (limits.RateLimitFields), and past a limit the answer
    is a 429 and nothing is forwarded."""
    admission = await gateway.admit(tenant, submit=submit)
    setattr(request.state, RATE_LIMIT_FIELDS, admission.headers())
    problem = admission.problem()
    if problem is not None:
        raise problem
    return tenant


# auth.py says who is calling; the dependency is composed here so the gateway has one source.
# Only an authenticated request counts against a tenant's limits: a 401 never does.
async def _tenant(
    request: Request,
    gateway: GatewayDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    tenant = await authenticated_tenant(gateway, credentials)
    return await _admitted(request, gateway, tenant, submit=False)


async def _submitting_tenant(
    request: Request,
    gateway: GatewayDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    tenant = await authenticated_tenant(gateway, credentials)
    return await _admitted(request, gateway, tenant, submit=True)


Tenant = Annotated[str, Depends(_tenant)]
# POST /v1/tasks: the request rate and the submit rate, in one limiter call
SubmittingTenant = Annotated[str, Depends(_submitting_tenant)]

TicketParam = Annotated[
    str | None,
    Query(
        description="A ticket from `POST /v1/ws-tickets`, for browsers, which cannot send a "
        "header here; it works once. Without an `Authorization` header only."
    ),
]


async def _live_tenant(
    request: Request,
    gateway: GatewayDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ticket: TicketParam = None,
) -> str:
    tenant = await live_tenant(gateway, credentials, ticket)
    return await _admitted(request, gateway, tenant, submit=False)


LiveTenant = Annotated[str, Depends(_live_tenant)]


def _is_json(content_type: str) -> bool:
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def _json_body(request: Request, shape: type[BaseModel], what: str) -> bytes:
    """The raw body, once it is JSON of ``shape`` (forwarded as is, so the owner reads the same
    bytes)."""
    if not _is_json(request.headers.get("content-type", "")):
        raise Problem(415, "Unsupported Media Type", f"Send {what} as `application/json`.")
    raw = await request.body()
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise Problem(400, "Malformed JSON", f"The body is not valid JSON: {exc}.") from exc
    except RecursionError as exc:
        raise Problem(400, "Malformed JSON", "The body nests too deeply.") from exc
    try:
        shape.model_validate(document)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**err, "loc": ("body", *err["loc"])} for err in exc.errors(include_url=False)]
        ) from exc
    return raw


async def task_submission(request: Request) -> bytes:
    """The raw body of a new task."""
    return await _json_body(request, NewTask, "the task")


async def cancel_submission(request: Request) -> bytes | None:
    """The raw body of a cancel request, or None when there is none (a body is optional)."""
    if not (await request.body()).strip():
        return None
    return await _json_body(request, CancelRequest, "the cancel request")


async def input_submission(request: Request) -> bytes:
    """The raw body of an answer to a task's question."""
    return await _json_body(request, TaskInput, "the answer")


def relayed(reply: InternalReply, *, headers: dict[str, str] | None = None) -> Response:
    """An internal answer as the client's answer: status and body unchanged, inner headers
    dropped."""
    kept = {name: value for name in RELAYED_HEADERS if (value := reply.header(name)) is not None}
    return Response(reply.body, status_code=reply.status, headers=kept | (headers or {}))


def _public_location(reply: InternalReply) -> str | None:
    """Where the new task lives, as a public path; never an internal host or path."""
    try:
        task_id = reply.json()["id"]
    except (ValueError, TypeError, KeyError):
        task_id = None
    if isinstance(task_id, str) and task_id:
        return f"/v1/tasks/{task_id}"
    upstream = reply.header("location")
    if upstream is None:
        return None
    path = urlsplit(upstream).path
    return "/v1/" + path.removeprefix("/internal/") if path.startswith("/internal/") else path


router = APIRouter(prefix="/v1", tags=["tasks"], responses=problems(401, 422, 429, 502, 503))


@router.post(
    "/tasks",
    status_code=202,
    response_model=Task,
    summary="Submit a task",
    description=(
        "Accepts the task and answers at once; follow it with `GET /v1/tasks/{id}` or its "
        "events. With an `Idempotency-Key`, the same key and body answer with the same task "
        "(and `Idempotent-Replayed: true`), the same key with another body is a 422, and a "
        "first request still in flight is a 409."
    ),
    responses=problems(400, 409, 413, 415),
    openapi_extra=NEW_TASK_BODY,
)
async def submit_task(
    tenant: SubmittingTenant,
    body: Annotated[bytes, Depends(task_submission)],
    gateway: GatewayDep,
    idempotency_key: Annotated[
        str | None, Header(description="Makes retries safe: one task per key and body.")
    ] = None,
) -> Response:
    reply = await gateway.submit_task(tenant, body, idempotency_key)
    location = _public_location(reply)
    if location:
        tag_span(task_id=location.rsplit("/", 1)[-1])
    return relayed(reply, headers={"Location": location} if location else None)


@router.get("/tasks", response_model=TaskPage, summary="List your tasks")
async def list_tasks(
    tenant: Tenant,
    gateway: GatewayDep,
    status: Annotated[TaskStatus | None, Query(description="Only tasks in this status.")] = None,
    limit: Annotated[
        int | None, Query(ge=1, le=100, description="Page size; 20 when omitted.")
    ] = None,
    cursor: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=CURSOR_PATTERN,
            description="`next_cursor` of the previous page. Any other value is a 422.",
        ),
    ] = None,
) -> Response:
    given = {"status": status, "limit": limit, "cursor": cursor}
    query = {name: str(value) for name, value in given.items() if value is not None}
    return relayed(await gateway.list_tasks(tenant, query))


@router.get("/tasks/{task_id}", response_model=Task, summary="One task", responses=problems(404))
async def get_task(tenant: Tenant, gateway: GatewayDep, task_id: UUID) -> Response:
    return relayed(await gateway.get_task(tenant, task_id))


@router.post(
    "/tasks/{task_id}/cancel",
    status_code=202,
    response_model=Task,
    summary="Cancel a task",
    description=(
        "Asks for the task to stop: it is `cancelling` at once, and `cancelled` (its last "
        "event `task.cancelled`) when the worker has stopped its model call and tools, within "
        "seconds. A task still queued never starts. Asking again answers 202 with the task; "
        "a task that has already finished answers 409. The body is optional."
    ),
    responses=problems(400, 404, 409, 413, 415),
    openapi_extra=CANCEL_BODY,
)
async def cancel_task(
    tenant: Tenant,
    gateway: GatewayDep,
    task_id: UUID,
    body: Annotated[bytes | None, Depends(cancel_submission)],
) -> Response:
    return relayed(await gateway.cancel_task(tenant, task_id, body))


@router.post(
    "/tasks/{task_id}/input",
    status_code=202,
    response_model=Task,
    summary="Answer the task's question",
    description=(
        "While the task is `waiting_for_input` (its `question` says what it asks, and its "
        "timeline has a `task.input_requested`), this answers it: the task is `running` again "
        "at once and resumes on a worker from where it stopped (`task.input_provided`, then a "
        "`task.started` with `resumed`). A task that waits for no answer, or has been answered "
        "already, answers 409 and nothing changes."
    ),
    responses=problems(400, 404, 409, 413, 415),
    openapi_extra=json_body(TaskInput),
)
async def provide_input(
    tenant: Tenant,
    gateway: GatewayDep,
    task_id: UUID,
    body: Annotated[bytes, Depends(input_submission)],
) -> Response:
    return relayed(await gateway.provide_input(tenant, task_id, body))


@router.get(
    "/tasks/{task_id}/events",
    status_code=200,
    summary="The task's events, live",
    description=(
        "Replays the task's timeline after `Last-Event-ID` (or `last_event_id`; the header "
        "wins), then streams new events as they happen. Either is a seq, a non-negative "
        "integer: anything else is a 422. A browser's `EventSource` authenticates with "
        "`?ticket=` (from `POST /v1/ws-tickets`) instead of the key."
    ),
    response_class=RelayedEventStream,
    responses=EVENT_STREAM | problems(404),
)
async def task_events(
    tenant: LiveTenant,
    gateway: GatewayDep,
    task_id: UUID,
    last_event_id_header: Annotated[
        int | None,
        Header(
            alias="Last-Event-ID",
            ge=0,
            le=MAX_SEQ,
            description="Resume after this seq (set by EventSource).",
        ),
    ] = None,
    last_event_id: Annotated[
        int | None,
        Query(ge=0, le=MAX_SEQ, description="Resume after this seq, where a header cannot be set."),
    ] = None,
) -> Response:
    # Checked here (a 422, like all bad input), so the notifier only ever gets a seq in plain
    # decimal: it would refuse anything else with a 400, which the public contract does not have.
    stream = await gateway.open_timeline(
        tenant,
        task_id,
        last_event_id=None if last_event_id_header is None else str(last_event_id_header),
        after=None if last_event_id is None else str(last_event_id),
    )
    if stream.status == 204:
        # the client already has the terminal event: 204 tells an EventSource not to reconnect
        await stream.aclose()
        return Response(status_code=204)
    return RelayedEventStream(stream)


@router.post(
    "/ws-tickets",
    status_code=201,
    response_model=WsTicket,
    tags=["live"],
    summary="A ticket for one live connection",
    description=(
        "For browsers, which cannot put the API key on a WebSocket or an `EventSource`: the "
        "ticket authenticates one `/v1/ws` connection or one `/v1/tasks/{id}/events` stream "
        "(`?ticket=`) as this tenant, once, within `expires_in` seconds. Get it from your own "
        "backend so the key never reaches the browser."
    ),
)
async def create_ws_ticket(tenant: Tenant, gateway: GatewayDep) -> Response:
    ticket = await gateway.issue_ticket(tenant)
    body = WsTicket(ticket=ticket, expires_in=gateway.ticket_ttl_seconds)
    return Response(
        body.model_dump_json(),
        status_code=201,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


@router.websocket("/ws")
async def live_updates(websocket: WebSocket) -> None:
    """Many tasks' events on one connection (DESIGN.md, *Live updates over WebSocket*)."""
    gateway: Gateway = websocket.app.state.service
    await websocket.accept()
    scheme, _, key = websocket.headers.get("authorization", "").partition(" ")
    credentials = (
        HTTPAuthorizationCredentials(scheme=scheme, credentials=key)
        if scheme.lower() == "bearer" and key
        else None
    )
    try:
        tenant = await live_tenant(gateway, credentials, websocket.query_params.get("ticket"))
        # the connection counts once against the request rate, when it opens
        refused = (await gateway.admit(tenant)).problem()
        if refused is not None:
            raise refused
    except Problem as problem:
        code = UNAUTHENTICATED if problem.status == 401 else TRY_AGAIN_LATER
        await close(websocket, code, problem.title)
        return
    await relay_live(
        websocket,
        gateway,
        tenant,
        send_queue_frames=gateway.send_queue_frames,
        send_timeout_seconds=gateway.send_timeout_seconds,
        max_subscriptions=gateway.max_subscriptions,
    )


@router.get(
    "/tasks/{task_id}/artifacts",
    response_model=ArtifactList,
    summary="The task's artifacts",
    responses=problems(404),
)
async def list_artifacts(tenant: Tenant, gateway: GatewayDep, task_id: UUID) -> Response:
    return relayed(await gateway.list_artifacts(tenant, task_id))


@router.get(
    "/tasks/{task_id}/artifacts/{artifact_id}",
    response_model=ArtifactDownload,
    summary="One artifact, with a short-lived download URL",
    responses=problems(404),
)
async def get_artifact(
    tenant: Tenant, gateway: GatewayDep, task_id: UUID, artifact_id: UUID
) -> Response:
    return relayed(await gateway.get_artifact(tenant, task_id, artifact_id))


@router.get(
    "/tasks/{task_id}/artifacts/{artifact_id}/content",
    status_code=302,
    response_class=RedirectResponse,
    summary="Download an artifact",
    description="Redirects to the artifact's presigned download URL.",
    responses={302: {"description": "Location: the presigned URL"}, **problems(404)},
)
async def artifact_content(
    tenant: Tenant, gateway: GatewayDep, task_id: UUID, artifact_id: UUID
) -> Response:
    url = await gateway.artifact_download_url(tenant, task_id, artifact_id)
    # the URL expires soon: nothing on the way may keep it
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})


# --- webhooks: the notifier owns them (DESIGN.md, *Webhooks (contract)*) ------------------------

webhooks = APIRouter(
    prefix="/v1/webhooks", tags=["webhooks"], responses=problems(401, 422, 429, 502, 503)
)

WebhookId = Annotated[UUID, Path(description="The endpoint's `id`.")]

# A secret is shown once: nothing on the way may keep a copy of the answer.
NOT_STORED = {"Cache-Control": "no-store"}


async def new_webhook_submission(request: Request) -> bytes:
    """The raw body of a new webhook endpoint."""
    return await _json_body(request, NewWebhookEndpoint, "the webhook endpoint")


async def webhook_patch_submission(request: Request) -> bytes:
    """The raw body of a change to a webhook endpoint."""
    return await _json_body(request, WebhookEndpointPatch, "the change")


async def replay_submission(request: Request) -> bytes:
    """The raw body of a replay request."""
    return await _json_body(request, WebhookReplayRequest, "the replay request")


@webhooks.post(
    "",
    status_code=201,
    response_model=WebhookEndpointWithSecret,
    summary="Add a webhook endpoint",
    description=(
        "Relay POSTs the chosen events of your tasks' timelines to `url`, signed per Standard "
        "Webhooks with the `secret` in this answer (shown only here). A URL that resolves to "
        "a loopback, private, link-local or metadata address is a 422; too many endpoints is "
        "a 409."
    ),
    responses=problems(400, 409, 413, 415),
    openapi_extra=json_body(NewWebhookEndpoint),
)
async def create_webhook(
    tenant: Tenant,
    body: Annotated[bytes, Depends(new_webhook_submission)],
    gateway: GatewayDep,
) -> Response:
    return relayed(await gateway.create_webhook(tenant, body), headers=NOT_STORED)


@webhooks.get("", response_model=WebhookEndpointList, summary="List your webhook endpoints")
async def list_webhooks(tenant: Tenant, gateway: GatewayDep) -> Response:
    return relayed(await gateway.list_webhooks(tenant))


@webhooks.get(
    "/{webhook_id}",
    response_model=WebhookEndpoint,
    summary="One webhook endpoint",
    responses=problems(404),
)
async def get_webhook(tenant: Tenant, gateway: GatewayDep, webhook_id: WebhookId) -> Response:
    return relayed(await gateway.get_webhook(tenant, webhook_id))


@webhooks.patch(
    "/{webhook_id}",
    response_model=WebhookEndpoint,
    summary="Change a webhook endpoint",
    description=(
        "Only the fields given change. `enabled: true` re-enables an endpoint that was "
        "disabled (after `410 Gone` or days of failures) and clears its `disabled_reason`."
    ),
    responses=problems(400, 404, 413, 415),
    openapi_extra=json_body(WebhookEndpointPatch),
)
async def update_webhook(
    tenant: Tenant,
    body: Annotated[bytes, Depends(webhook_patch_submission)],
    gateway: GatewayDep,
    webhook_id: WebhookId,
) -> Response:
    return relayed(await gateway.update_webhook(tenant, webhook_id, body))


@webhooks.delete(
    "/{webhook_id}",
    status_code=204,
    response_class=Response,
    summary="Remove a webhook endpoint",
    responses={204: {"description": "Removed."}, **problems(404)},
)
async def delete_webhook(tenant: Tenant, gateway: GatewayDep, webhook_id: WebhookId) -> Response:
    return relayed(await gateway.delete_webhook(tenant, webhook_id))


@webhooks.post(
    "/{webhook_id}/rotate-secret",
    response_model=WebhookSecret,
    summary="Rotate a webhook endpoint's secret",
    description=(
        "A new secret, shown only here. Until `previous_secret_expires_at` (24 hours by "
        "default) each "
        "delivery carries a signature with the old secret too, so the receiver can switch "
        "without missing one."
    ),
    responses=problems(404),
)
async def rotate_webhook_secret(
    tenant: Tenant, gateway: GatewayDep, webhook_id: WebhookId
) -> Response:
    reply = await gateway.rotate_webhook_secret(tenant, webhook_id)
    return relayed(reply, headers=NOT_STORED)


@webhooks.get(
    "/{webhook_id}/deliveries",
    response_model=WebhookDeliveryPage,
    summary="A webhook endpoint's deliveries",
    description=(
        "Newest first, a page at a time. A `cursor` that is not a `next_cursor` this API "
        "returned is a 400."
    ),
    responses=problems(400, 404),
)
async def list_webhook_deliveries(
    tenant: Tenant,
    gateway: GatewayDep,
    webhook_id: WebhookId,
    *,
    status: Annotated[
        DeliveryStatus | None, Query(description="Only deliveries in this status.")
    ] = None,
    limit: Annotated[
        int | None, Query(ge=1, le=100, description="Page size; 50 when omitted.")
    ] = None,
    cursor: Annotated[
        str | None, Query(max_length=200, description="`next_cursor` of the previous page.")
    ] = None,
) -> Response:
    given = {"status": status, "limit": limit, "cursor": cursor}
    query = {name: str(value) for name, value in given.items() if value is not None}
    return relayed(await gateway.list_webhook_deliveries(tenant, webhook_id, query))


@webhooks.post(
    "/{webhook_id}/replay",
    status_code=202,
    response_model=WebhookReplayQueued,
    summary="Deliver timeline events again",
    description=(
        "Sends a task's timeline events again, those after a seq "
        '(`{"task_id": ..., "after": 3}`), or every task\'s since a time '
        '(`{"since": "2026-01-01T00:00:00Z"}`); only the types the endpoint takes. A task '
        "that is not yours is a 404."
    ),
    responses=problems(400, 404, 413, 415),
    openapi_extra=json_body(WebhookReplayRequest),
)
async def replay_webhook(
    tenant: Tenant,
    body: Annotated[bytes, Depends(replay_submission)],
    gateway: GatewayDep,
    webhook_id: WebhookId,
) -> Response:
    return relayed(await gateway.replay_webhook(tenant, webhook_id, body))


@webhooks.post(
    "/{webhook_id}/test",
    status_code=202,
    response_model=WebhookTestQueued,
    summary="Send a test delivery",
    description="Queues a `webhook.test` event for the endpoint.",
    responses=problems(404),
)
async def send_webhook_test(tenant: Tenant, gateway: GatewayDep, webhook_id: WebhookId) -> Response:
    return relayed(await gateway.send_webhook_test(tenant, webhook_id))


def install_relayed_refusals(app: FastAPI) -> None:
    """An internal service's 4xx reaches the client unchanged, except that a problem's
    ``instance`` names the public path the client called, never the internal one."""

    async def on_refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        response = relayed(exc.reply)
        if (exc.reply.header("content-type") or "").startswith(PROBLEM_JSON):
            try:
                problem = exc.reply.json()
            except ValueError:
                return response
            if isinstance(problem, dict) and "instance" in problem:
                problem["instance"] = request.url.path
                response.body = json.dumps(problem).encode()
                response.headers["content-length"] = str(len(response.body))
        return response

    app.add_exception_handler(Refused, on_refused)
