"""Internal routes (called by the gateway with a signed token naming the tenant)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request

from artifacts.models import ArtifactDownloadView, ArtifactList, ArtifactView
from artifacts.service import ArtifactService
from relay_shared.internal_auth import InternalCaller
from relay_shared.problems import Problem

router = APIRouter(prefix="/internal/tasks/{task_id}/artifacts")


async def _service(request: Request) -> ArtifactService:  # async: no worker thread
    service: ArtifactService = request.app.state.service
    return service


Service = Annotated[ArtifactService, Depends(_service)]


def _not_found(task_id: str, artifact_id: str) -> Problem:
    return Problem(404, "Not Found", f"Task {task_id} has no artifact {artifact_id}.")


def _uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None


@router.get("")
async def list_artifacts(task_id: str, caller: InternalCaller, service: Service) -> ArtifactList:
    """The task's published artifacts, oldest first. A task that is unknown or another
    tenant's has none here; the gateway has already checked that the caller owns the task."""
    task = _uuid(task_id)
    if task is None:
        raise Problem(404, "Not Found", f"No task {task_id}.")
    artifacts = await service.downloads.list_published(caller.tenant_id, task)
    return ArtifactList(items=[ArtifactView.of(a) for a in artifacts])


@router.get("/{artifact_id}")
async def get_artifact(
    task_id: str, artifact_id: str, caller: InternalCaller, service: Service
) -> ArtifactDownloadView:
    task, artifact = _uuid(task_id), _uuid(artifact_id)
    if task is None or artifact is None:
        raise _not_found(task_id, artifact_id)
    download = await service.downloads.download(caller.tenant_id, task, artifact)
    if download is None:
        raise _not_found(task_id, artifact_id)  # missing and another tenant's look the same
    return ArtifactDownloadView(
        **ArtifactView.of(download.artifact).model_dump(),
        download_url=download.url,
        download_url_expires_at=download.expires_at,
    )
