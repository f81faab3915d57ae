"""HTTP routes: /internal/tasks, called by the gateway on behalf of a tenant."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from relay_shared.internal_auth import InternalCaller
from tasks.errors import TaskNotFound
from tasks.lifecycle import TaskStatus
from tasks.models import TaskPageView, TaskRequest, TaskView
from tasks.service import TaskService

router = APIRouter(prefix="/internal/tasks")


def _service(request: Request) -> TaskService:
    service: TaskService = request.app.state.service
    return service


Service = Annotated[TaskService, Depends(_service)]


async def _task_request(request: Request, service: Service) -> TaskRequest:
    # Parsed by hand because the prompt limit is a setting; errors take FastAPI's usual shape.
    try:
        return service.intake.read_request(await request.body())
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from exc


IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x20-\x7e]+$"),
]


@router.post("", status_code=202)
async def submit_task(
    caller: InternalCaller,
    body: Annotated[TaskRequest, Depends(_task_request)],
    service: Service,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> TaskView:
    submission = await service.intake.submit(
        caller.tenant_id, body, idempotency_key=idempotency_key
    )
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
    try:
        parsed = UUID(task_id)
    except ValueError:
        raise TaskNotFound from None
    return TaskView.of(await service.queries.get(caller.tenant_id, parsed))
