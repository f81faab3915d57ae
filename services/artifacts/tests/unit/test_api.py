"""Internal routes through the composition root, with the in-memory fakes."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI

from artifacts.app import create_app
from artifacts.handlers import event_dispatcher
from artifacts.service import ArtifactService
from artifacts.settings import ArtifactsSettings
from relay_shared.composition import given
from relay_shared.consumer import ReceivedMessage
from relay_shared.events import ArtifactUploaded
from relay_shared.internal_auth import TokenIssuer, generate_keypair

from .conftest import ISSUER
from .fakes import Fakes

Upload = Callable[..., ArtifactUploaded]


def auth(tenant_id: str, audience: str = "artifacts") -> dict[str, str]:
    return ISSUER.headers(audience=audience, tenant_id=tenant_id)


@pytest.fixture
def service(app: FastAPI, client: httpx.AsyncClient) -> ArtifactService:
    """The running app's own service (what its routes and its consumer use)."""
    service: ArtifactService = app.state.service
    return service


def as_received(event: ArtifactUploaded) -> ReceivedMessage:
    """``event`` as SQS hands it over after EventBridge delivered it to the queue."""
    body = json.dumps(
        {"source": event.source(), "detail-type": event.name, "detail": event.detail()}
    )
    return ReceivedMessage(
        message_id=str(event.metadata.event_id),
        receipt_handle="memory",
        body=body,
        receive_count=1,
        attributes={},
    )


async def publish(
    fakes: Fakes, service: ArtifactService, event: ArtifactUploaded, body: bytes
) -> None:
    """Stage ``body`` as the agent would, then deliver the upload event to the consumer's
    handlers."""
    fakes.objects.put(event.data.bucket, event.data.key, body)
    await event_dispatcher(service)(as_received(event))


async def test_owner_lists_published_artifacts_oldest_first(
    client: httpx.AsyncClient,
    fakes: Fakes,
    service: ArtifactService,
    upload_event: Upload,
) -> None:
    task_id = uuid4()
    earlier = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    first = upload_event(b"one", name="a.md", task_id=task_id, occurred_at=earlier)
    second = upload_event(
        b"two!", name="b.md", task_id=task_id, occurred_at=earlier + timedelta(seconds=1)
    )
    rejected = upload_event(b"bad", name="c.md", task_id=task_id, size=99)
    other_task = upload_event(b"elsewhere", name="d.md")
    for event, body in ((second, b"two!"), (first, b"one"), (rejected, b"bad"), (other_task, b"x")):
        await publish(fakes, service, event, body)

    response = await client.get(f"/internal/tasks/{task_id}/artifacts", headers=auth("acme"))

    assert response.status_code == 200
    items = response.json()["items"]
    assert [item["name"] for item in items] == ["a.md", "b.md"]  # by created_at, not arrival
    assert items[0] == {
        "id": str(first.data.artifact_id),
        "task_id": str(task_id),
        "name": "a.md",
        "content_type": first.data.content_type,
        "size": 3,
        "sha256": first.data.sha256,
        "created_at": "2025-01-01T12:00:00Z",
    }


async def test_owner_gets_metadata_and_a_download_link(
    client: httpx.AsyncClient,
    fakes: Fakes,
    service: ArtifactService,
    upload_event: Upload,
) -> None:
    event = upload_event(b"report", name="out/report.md")
    await publish(fakes, service, event, b"report")
    path = f"/internal/tasks/{event.metadata.task_id}/artifacts/{event.data.artifact_id}"

    before = datetime.now(UTC).replace(microsecond=0)
    response = await client.get(path, headers=auth("acme"))

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(event.data.artifact_id)
    assert body["size"] == 6
    url = urlsplit(body["download_url"])
    assert url.path == f"/{event.data.key}"  # served from where the agent uploaded it
    assert parse_qs(url.query) == {
        "filename": ["report.md"],
        "type": [event.data.content_type],
        "expires": ["120"],
    }
    expires_at = datetime.fromisoformat(body["download_url_expires_at"])
    assert (
        before + timedelta(seconds=120) <= expires_at <= datetime.now(UTC) + timedelta(seconds=120)
    )


async def test_another_tenant_sees_nothing(
    client: httpx.AsyncClient,
    fakes: Fakes,
    service: ArtifactService,
    upload_event: Upload,
) -> None:
    event = upload_event(b"secret", tenant_id="acme")
    await publish(fakes, service, event, b"secret")
    task = f"/internal/tasks/{event.metadata.task_id}/artifacts"

    listed = await client.get(task, headers=auth("globex"))
    single = await client.get(f"{task}/{event.data.artifact_id}", headers=auth("globex"))
    missing = await client.get(f"{task}/{uuid4()}", headers=auth("acme"))

    assert listed.status_code == 200
    assert listed.json() == {"items": []}
    assert single.status_code == 404
    assert single.headers["content-type"] == "application/problem+json"
    # another tenant's artifact answers exactly like a missing one
    assert {k: v for k, v in single.json().items() if k not in {"detail", "instance"}} == {
        k: v for k, v in missing.json().items() if k not in {"detail", "instance"}
    }
    assert missing.status_code == 404


async def test_rejected_artifact_is_not_downloadable(
    client: httpx.AsyncClient,
    fakes: Fakes,
    service: ArtifactService,
    upload_event: Upload,
) -> None:
    event = upload_event(b"short", size=50)
    await publish(fakes, service, event, b"short")

    response = await client.get(
        f"/internal/tasks/{event.metadata.task_id}/artifacts/{event.data.artifact_id}",
        headers=auth("acme"),
    )

    assert response.status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/internal/tasks/not-a-uuid/artifacts",
        "/internal/tasks/not-a-uuid/artifacts/0c9a3f4e-5b1d-4e7a-9c2f-3d8e6a1b7f05",
        "/internal/tasks/7d2e9b61-0a4c-4f38-b5e1-9c6d2a8f3e47/artifacts/not-a-uuid",
    ],
)
async def test_malformed_ids_answer_404(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path, headers=auth("acme"))
    assert response.status_code == 404


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-token"},
        auth("acme", audience="tasks"),  # a token minted for another service
        TokenIssuer(generate_keypair()[0]).headers(audience="artifacts", tenant_id="acme"),
    ],
)
async def test_routes_need_a_gateway_token_for_this_service(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.get(f"/internal/tasks/{uuid4()}/artifacts", headers=headers)
    assert response.status_code == 401


def test_app_refuses_to_start_without_the_verification_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RELAY_INTERNAL_AUTH_PUBLIC_KEY", raising=False)
    with pytest.raises(RuntimeError, match="RELAY_INTERNAL_AUTH_PUBLIC_KEY"):
        create_app(ArtifactsSettings(), ports=given(Fakes().ports()))
