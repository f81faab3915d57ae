"""The demo's client of the PUBLIC API: what any API user would do, nothing internal."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import SSEError, aconnect_sse

from relay_shared.events import TERMINAL_EVENTS

RECONNECTS = 5
# The stream sends a heartbeat at least every 15 s; three missed ones mean it is gone.
STREAM_TIMEOUT = httpx.Timeout(10.0, read=45.0)


class DemoFailure(Exception):
    """One step of the demo failed; ``step`` says which, in words."""

    def __init__(self, step: str, detail: str) -> None:
        super().__init__(f"{step}: {detail}")
        self.step = step
        self.detail = detail


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    if isinstance(body, Mapping):
        title, detail = body.get("title", ""), body.get("detail", "")
        return f"HTTP {response.status_code}: {title}. {detail}".strip()
    return f"HTTP {response.status_code}: {body!r}"


def _expect(response: httpx.Response, status: int, step: str) -> Any:
    if response.status_code != status:
        raise DemoFailure(step, _problem(response))
    return response.json()


class PublicApi:
    def __init__(self, http: httpx.AsyncClient) -> None:
        """``http`` has the gateway as base URL and the API key in its headers."""
        self._http = http

    async def submit(self, prompt: str) -> dict[str, Any]:
        response = await self._http.post("/v1/tasks", json={"prompt": prompt})
        task: dict[str, Any] = _expect(response, 202, "submit the task")
        return task

    async def task(self, task_id: str) -> dict[str, Any]:
        response = await self._http.get(f"/v1/tasks/{task_id}")
        task: dict[str, Any] = _expect(response, 200, "read the task")
        return task

    async def timeline(self, task_id: str) -> AsyncIterator[dict[str, Any]]:
        """The task's events over SSE until the terminal one, resuming after a dropped stream."""
        step = "follow the timeline"
        last_id: str | None = None
        failures = 0
        while True:
            headers = {"Last-Event-ID": last_id} if last_id else {}
            try:
                async with aconnect_sse(
                    self._http,
                    "GET",
                    f"/v1/tasks/{task_id}/events",
                    headers=headers,
                    timeout=STREAM_TIMEOUT,
                ) as source:
                    if source.response.status_code != 200:
                        await source.response.aread()
                        raise DemoFailure(step, _problem(source.response))
                    async for sse in source.aiter_sse():
                        if not sse.data:
                            continue
                        event: dict[str, Any] = json.loads(sse.data)
                        last_id = sse.id or str(event.get("seq", "")) or last_id
                        yield event
                        if event.get("type") in TERMINAL_EVENTS:
                            return
            except (httpx.TransportError, SSEError, ValueError) as exc:
                failures += 1
                if failures > RECONNECTS:
                    raise DemoFailure(step, f"the event stream kept failing: {exc!r}") from exc
            # The stream ended (or broke) before the terminal event: pick it up where it was.
            await asyncio.sleep(0.5)

    async def artifacts(self, task_id: str) -> list[dict[str, Any]]:
        response = await self._http.get(f"/v1/tasks/{task_id}/artifacts")
        body = _expect(response, 200, "list the artifacts")
        items: list[dict[str, Any]] = body["items"]
        return items

    async def download(self, artifact: Mapping[str, Any], directory: Path) -> Path:
        """The artifact's content (via the 302 to its presigned URL), checked against its
        recorded size and sha256, written to ``directory``/<name>."""
        step = f"download {artifact['name']}"
        url = f"/v1/tasks/{artifact['task_id']}/artifacts/{artifact['id']}/content"
        # httpx drops the Authorization header when the redirect leaves the gateway's origin.
        response = await self._http.get(url, follow_redirects=True)
        if response.status_code != 200:
            raise DemoFailure(step, _problem(response))
        if not response.history or response.history[0].status_code != 302:
            raise DemoFailure(step, "the gateway did not answer with a 302 to the download URL")
        content = response.content
        if len(content) != artifact["size"]:
            raise DemoFailure(
                step, f"got {len(content)} bytes, the artifact says {artifact['size']}"
            )
        digest = hashlib.sha256(content).hexdigest()
        if digest != artifact["sha256"]:
            raise DemoFailure(step, f"sha256 {digest} does not match {artifact['sha256']}")
        return await asyncio.to_thread(save, directory, str(artifact["name"]), content)


def save(directory: Path, name: str, content: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    # Only the file name: an artifact's name never chooses where on disk it lands.
    target = directory / Path(name).name
    target.write_bytes(content)
    return target
