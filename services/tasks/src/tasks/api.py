"""HTTP routes: /internal/tasks, called by the gateway on behalf of a tenant."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from relay_shared.internal_auth import InternalCaller
from relay_shared.tracing import tag_span
from tasks.errors import TaskNotFound
from tasks.lifecycle import TaskStatus
from tasks.models import (
    CancelRequest,
    InputRequest,
    Quota,
    TaskPageView,
    TaskRequest,
    TaskView,
)
from tasks.service import TaskService

router = APIRouter(prefix="/internal/tasks")


async def _service(request: Request) -> TaskService:  # async: no worker thread
    service: TaskService = request.app.state.service
    return service


Service = Annotated[TaskService, Depends(_service)]


def _invalid_body(exc: ValidationError) -> RequestValidationError:
    """A body's validation errors in FastAPI's usual shape (the problem handler lists them)."""
    errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
    return RequestValidationError(errors)


async def _task_request(request: Request, service: Service) -> TaskRequest:
    # Parsed by hand because the rules (prompt length, models, budget maxima) are settings.
    try:
        return service.intake.read_request(await request.body())
    except ValidationError as exc:
        raise _invalid_body(exc) from exc


async def _cancel_request(request: Request) -> CancelRequest:
    # Parsed by hand because the body is optional: no body at all is a cancel without a reason.
    try:
        return CancelRequest.parse(await request.body())
    except ValidationError as exc:
        raise _invalid_body(exc) from exc


async def _input_request(request: Request, service: Service) -> InputRequest:
    # Parsed by hand because the length limit is a setting and over it is 413, not 422.
    try:
        return service.input.read_request(await request.body())
    except ValidationError as exc:
        raise _invalid_body(exc) from exc


def _task_id(task_id: str) -> UUID:
    try:
        return UUID(task_id)
    except ValueError:
        raise TaskNotFound from None  # a malformed id names no task, like a missing one


IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x20-\x7e]+$"),
]


async def _quota(
    active_tasks: Annotated[int | None, Header(alias="Relay-Quota-Active-Tasks", ge=1)] = None,
    daily_spend_usd: Annotated[
        float | None, Header(alias="Relay-Quota-Daily-Spend-Usd", gt=0)
    ] = None,
    daily_tokens: Annotated[int | None, Header(alias="Relay-Quota-Daily-Tokens", ge=1)] = None,
) -> Quota:
    """The tenant's quotas, as the gateway sends them with a submit (it keeps the defaults and
    the per-tenant overrides); a missing header = no such quota. Read only from an
    authenticated gateway call."""
    return Quota(active_tasks, daily_spend_usd, daily_tokens)


@router.post("", status_code=202)
async def submit_task(
    *,
    caller: InternalCaller,
    body: Annotated[TaskRequest, Depends(_task_request)],
    quota: Annotated[Quota, Depends(_quota)],
    service: Service,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> TaskView:
    submission = await service.intake.submit(
        caller.tenant_id, body, idempotency_key=idempotency_key, quota=quota
    )
    tag_span(task_id=str(submission.task.id))
    response.headers["Location"] = f"/v1/tasks/{submission.task.id}"
    if submission.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return TaskView.of(submission.task)


@router.get("")
async def list_tasks(
    caller: InternalCaller,
    service: Service,
    status: TaskStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
) -> TaskPageView:
    page = await service.queries.page(caller.tenant_id, status=status, limit=limit, cursor=cursor)
    return TaskPageView.of(page)


@router.get("/{task_id}")
async def get_task(caller: InternalCaller, service: Service, task_id: str) -> TaskView:
    return TaskView.of(await service.queries.get(caller.tenant_id, _task_id(task_id)))


@router.post("/{task_id}/cancel", status_code=202)
async def cancel_task(
    caller: InternalCaller,
    service: Service,
    task_id: str,
    body: Annotated[CancelRequest, Depends(_cancel_request)],
) -> TaskView:
    task = await service.cancellation.request(
        caller.tenant_id, _task_id(task_id), reason=body.reason
    )
    return TaskView.of(task)


@router.post("/{task_id}/input", status_code=202)
async def provide_input(
    caller: InternalCaller,
    service: Service,
    task_id: str,
    body: Annotated[InputRequest, Depends(_input_request)],
) -> TaskView:
    task = await service.input.provide(caller.tenant_id, _task_id(task_id), body)
    return TaskView.of(task)
