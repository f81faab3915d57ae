"""``Relay``: the client for scripts and threads (httpx, blocking)."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Self
from uuid import UUID

import httpx
from httpx_sse import connect_sse
from tenacity import Retrying

from relay_client import _base
from relay_client._base import STREAM_DROPS, STREAM_TIMEOUT, Resume, params, parse
from relay_client.models import (
    Artifact,
    ArtifactDownload,
    ArtifactList,
    DeliveryStatus,
    NewTaskLimits,
    Task,
    TaskPage,
    TaskStatus,
    TimelineEvent,
    WebhookDelivery,
    WebhookDeliveryPage,
    WebhookEndpoint,
    WebhookEndpointList,
    WebhookEndpointWithSecret,
    WebhookReplayQueued,
    WebhookSecret,
    WebhookTestQueued,
)

Id = UUID | str


class Relay:
    """The Relay API. ``base_url`` and ``api_key`` default to ``RELAY_URL`` and
    ``RELAY_API_KEY``. Calls answered 429 or 503, and those that could not connect, are retried
    ``max_retries`` times, waiting what ``Retry-After`` asks. Use it as a context manager, or
    ``close()`` it."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: httpx.Timeout | float = _base.DEFAULT_TIMEOUT,
        max_retries: int = _base.DEFAULT_MAX_RETRIES,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.base_url, key = _base.settings(base_url, api_key)
        self.max_retries = max_retries
        self._http = http_client or httpx.Client(timeout=timeout)
        self._headers = _base.headers(key)
        self.tasks = Tasks(self)
        self.artifacts = Artifacts(self)
        self.webhooks = Webhooks(self)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        request = self._http.build_request(
            method,
            self.base_url + path,
            json=json,
            params=params,
            headers={**self._headers, **(headers or {})},
        )

        def send() -> httpx.Response:
            response = self._http.send(request)
            _base.raise_for_status(response)
            return response

        try:
            return Retrying(**_base.retry_options(self.max_retries))(send)
        except httpx.TransportError as exc:
            raise _base.transport_error(exc) from exc


class Tasks:
    def __init__(self, client: Relay) -> None:
        self._client = client

    def create(
        self,
        prompt: str,
        *,
        model: str | None = None,
        metadata: Mapping[str, str] | None = None,
        limits: NewTaskLimits | Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Task:
        """Submit a task. Each call sends an Idempotency-Key (a new one unless given), so a
        retried call never makes a second task."""
        body: dict[str, Any] = {"prompt": prompt}
        if model is not None:
            body["model"] = model
        if metadata is not None:
            body["metadata"] = dict(metadata)
        if limits is not None:
            body["limits"] = NewTaskLimits.model_validate(limits).model_dump(exclude_none=True)
        key = idempotency_key or _base.idempotency_key()
        response = self._client._request(
            "POST", "/v1/tasks", json=body, headers={"Idempotency-Key": key}
        )
        return parse(response, Task)

    def get(self, task_id: Id) -> Task:
        return parse(self._client._request("GET", f"/v1/tasks/{task_id}"), Task)

    def list_page(
        self,
        *,
        status: TaskStatus | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> TaskPage:
        """One page, newest first; pass ``next_cursor`` as ``cursor`` for the next."""
        query = params(status=status, limit=limit, cursor=cursor)
        return parse(self._client._request("GET", "/v1/tasks", params=query), TaskPage)

    def list(
        self, *, status: TaskStatus | None = None, page_size: int | None = None
    ) -> Iterator[Task]:
        """Every task (of ``status``), newest first, fetching pages as the loop goes."""
        cursor: str | None = None
        while True:
            page = self.list_page(status=status, limit=page_size, cursor=cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def cancel(self, task_id: Id, *, reason: str | None = None) -> Task:
        body = {"reason": reason} if reason is not None else None
        response = self._client._request("POST", f"/v1/tasks/{task_id}/cancel", json=body)
        return parse(response, Task)

    def input(self, task_id: Id, text: str, *, question_id: Id | None = None) -> Task:
        """Answer the question a ``waiting_for_input`` task asks (``task.question``); the task
        resumes and this returns it ``running``. Pass ``question_id`` (``task.question.id``) to
        answer that question only: ConflictError (409) when the task is not waiting for it, e.g.
        it was answered already. Answering from a ``task.input_requested`` event, pass its
        ``question_id``: the service then waits a moment for a question its record has not
        applied yet instead of refusing it."""
        body = params(text=text, question_id=str(question_id) if question_id else None)
        response = self._client._request("POST", f"/v1/tasks/{task_id}/input", json=body)
        return parse(response, Task)

    def events(self, task_id: Id, *, after: int = 0) -> Iterator[TimelineEvent]:
        """The task's timeline after seq ``after``, then live, until its terminal event. A
        dropped connection is resumed with ``Last-Event-ID``: every event once, in order."""
        resume = Resume(after=after)
        client = self._client
        url = f"{client.base_url}/v1/tasks/{task_id}/events"
        while not resume.ended:
            headers = {**client._headers, **resume.request_headers()}
            try:
                with connect_sse(
                    client._http, "GET", url, headers=headers, timeout=STREAM_TIMEOUT
                ) as source:
                    if source.response.status_code == 204:  # resumed after the terminal event
                        return
                    if source.response.status_code >= 400:
                        source.response.read()
                        _base.raise_for_status(source.response)
                    for sse in source.iter_sse():
                        if sse.data and (event := resume.take(sse.data)) is not None:
                            yield event
                if not resume.ended:
                    raise httpx.RemoteProtocolError("the stream ended before the task did")
            except STREAM_DROPS as exc:
                time.sleep(resume.dropped(exc))

    def wait(self, task_id: Id, *, timeout: float | None = None) -> Task:
        """The task once it has ended (succeeded, failed or cancelled). Without a timeout it
        follows the task's events; with one it asks every half second (a blocking stream cannot
        be interrupted at a deadline), and raises TimeoutError after ``timeout`` seconds. A task
        that asks a question waits for its answer (``input``) meanwhile, and so does this."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if deadline is None:
            for _event in self.events(task_id):
                pass
        # the timeline shows the end as it happens; the task record follows in a moment
        while not (task := self.get(task_id)).done:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"task {task_id} did not end within {timeout}s")
            time.sleep(0.2 if deadline is None else 0.5)
        return task


class Artifacts:
    def __init__(self, client: Relay) -> None:
        self._client = client

    def list(self, task_id: Id) -> list[Artifact]:
        response = self._client._request("GET", f"/v1/tasks/{task_id}/artifacts")
        return parse(response, ArtifactList).items

    def get(self, task_id: Id, artifact_id: Id) -> ArtifactDownload:
        """The artifact with a short-lived ``download_url``."""
        path = f"/v1/tasks/{task_id}/artifacts/{artifact_id}"
        response = self._client._request("GET", path)
        return parse(response, ArtifactDownload)

    def download(self, task_id: Id, artifact_id: Id, to: str | os.PathLike[str] = ".") -> Path:
        """Save the artifact's bytes, checked against its size and sha256, to ``to`` (a folder:
        under the artifact's name; else that file). Nothing is left behind when they do not
        match (ChecksumMismatchError)."""
        artifact = self.get(task_id, artifact_id)
        target = Path(to)
        if target.is_dir():
            target = target / Path(artifact.name).name
        partial = target.with_name(f".{target.name}.part")
        digest, size = hashlib.sha256(), 0
        try:
            # the presigned URL carries its own signature: no API key goes to storage
            with self._client._http.stream(
                "GET", artifact.download_url, timeout=STREAM_TIMEOUT
            ) as r:
                _base.raise_for_status(r)
                with partial.open("wb") as out:
                    for chunk in r.iter_bytes():
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
            _base.check_download(artifact, size, digest.hexdigest())
            partial.replace(target)
        except httpx.TransportError as exc:
            raise _base.transport_error(exc) from exc
        finally:
            partial.unlink(missing_ok=True)
        return target

    def read(self, task_id: Id, artifact_id: Id) -> bytes:
        """The artifact's bytes, checked against its size and sha256."""
        artifact = self.get(task_id, artifact_id)
        try:
            response = self._client._http.get(artifact.download_url, timeout=STREAM_TIMEOUT)
        except httpx.TransportError as exc:
            raise _base.transport_error(exc) from exc
        _base.raise_for_status(response)
        _base.check_download(
            artifact, len(response.content), hashlib.sha256(response.content).hexdigest()
        )
        return response.content


class Webhooks:
    def __init__(self, client: Relay) -> None:
        self._client = client

    def create(
        self, url: str, *, event_types: Sequence[str] | None = None, description: str = ""
    ) -> WebhookEndpointWithSecret:
        """A new endpoint; its ``secret`` (for verify_webhook) is shown only here."""
        body: dict[str, Any] = {"url": url, "description": description}
        if event_types is not None:
            body["event_types"] = list(event_types)
        response = self._client._request("POST", "/v1/webhooks", json=body)
        return parse(response, WebhookEndpointWithSecret)

    def list(self) -> list[WebhookEndpoint]:
        return parse(self._client._request("GET", "/v1/webhooks"), WebhookEndpointList).items

    def get(self, webhook_id: Id) -> WebhookEndpoint:
        return parse(self._client._request("GET", f"/v1/webhooks/{webhook_id}"), WebhookEndpoint)

    def update(
        self,
        webhook_id: Id,
        *,
        url: str | None = None,
        event_types: Sequence[str] | None = None,
        description: str | None = None,
        enabled: bool | None = None,
    ) -> WebhookEndpoint:
        types = None if event_types is None else list(event_types)
        body = params(url=url, event_types=types, description=description, enabled=enabled)
        response = self._client._request("PATCH", f"/v1/webhooks/{webhook_id}", json=body)
        return parse(response, WebhookEndpoint)

    def delete(self, webhook_id: Id) -> None:
        self._client._request("DELETE", f"/v1/webhooks/{webhook_id}")

    def rotate_secret(self, webhook_id: Id) -> WebhookSecret:
        response = self._client._request("POST", f"/v1/webhooks/{webhook_id}/rotate-secret")
        return parse(response, WebhookSecret)

    def deliveries(
        self, webhook_id: Id, *, status: DeliveryStatus | None = None, page_size: int | None = None
    ) -> Iterator[WebhookDelivery]:
        """The endpoint's deliveries, newest first, fetching pages as the loop goes."""
        cursor: str | None = None
        while True:
            query = params(status=status, limit=page_size, cursor=cursor)
            response = self._client._request(
                "GET", f"/v1/webhooks/{webhook_id}/deliveries", params=query
            )
            page = parse(response, WebhookDeliveryPage)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def replay(
        self,
        webhook_id: Id,
        *,
        task_id: Id | None = None,
        after: int = 0,
        since: str | None = None,
    ) -> WebhookReplayQueued:
        """Send again one task's events after seq ``after`` (``task_id``), or every event since
        an ISO time (``since``)."""
        body = params(task_id=str(task_id) if task_id else None, since=since)
        if task_id is not None:
            body["after"] = after
        response = self._client._request("POST", f"/v1/webhooks/{webhook_id}/replay", json=body)
        return parse(response, WebhookReplayQueued)

    def test(self, webhook_id: Id) -> WebhookTestQueued:
        response = self._client._request("POST", f"/v1/webhooks/{webhook_id}/test")
        return parse(response, WebhookTestQueued)
