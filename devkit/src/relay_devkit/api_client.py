"""A public-API client for the end-to-end and fault suites: only what any API client can do over
HTTP, with assertions that make a test fail at the first unexpected answer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import aconnect_sse
from websockets.asyncio.client import connect


@dataclass(frozen=True)
class TimelineEvent:
    id: int
    event: str
    data: dict[str, Any]


class PublicApi:
    def __init__(self, base_url: str, key: str | None) -> None:
        self.key = key
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def submit(self, prompt: str, **body: Any) -> dict[str, Any]:
        response = await self.http.post("/v1/tasks", json={"prompt": prompt, **body})
        assert response.status_code == 202, response.text
        task: dict[str, Any] = response.json()
        return task

    async def task(self, task_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/v1/tasks/{task_id}")
        assert response.status_code == 200, response.text
        task: dict[str, Any] = response.json()
        return task

    async def timeline(
        self,
        task_id: str,
        *,
        last_event_id: int | None = None,
        within: float = 60,
        on_event: Callable[[TimelineEvent], None] = lambda _: None,
    ) -> list[TimelineEvent]:
        """Follow the SSE stream until the server ends it (after the terminal event);
        ``on_event`` sees each event as it arrives."""
        headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
        events = []
        async with aconnect_sse(
            self.http,
            "GET",
            f"/v1/tasks/{task_id}/events",
            headers=headers,
            timeout=httpx.Timeout(within),
        ) as source:
            assert source.response.status_code == 200, await source.response.aread()
            assert source.response.headers["content-type"].startswith("text/event-stream")
            async for sse in source.aiter_sse():
                if not sse.data:
                    # A heartbeat comment after an event: httpx-sse keeps the last id and hands
                    # out an empty event; the SSE spec dispatches nothing for an empty data buffer.
                    continue
                events.append(TimelineEvent(int(sse.id), sse.event, json.loads(sse.data)))
                on_event(events[-1])
        return events

    async def finished_task(self, task_id: str, *, within: float = 30) -> dict[str, Any]:
        """The task once the tasks service has applied its terminal event. The timeline and
        the task are fed by separate queues, so one may be a moment ahead of the other."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            task = await self.task(task_id)
            if task["status"] in {"succeeded", "failed", "cancelled"}:
                return task
            assert asyncio.get_running_loop().time() < deadline, f"still {task['status']}"
            await asyncio.sleep(0.05)

    async def ws_ticket(self) -> str:
        """A single-use ticket for one live connection (``POST /v1/ws-tickets``)."""
        response = await self.http.post("/v1/ws-tickets")
        assert response.status_code == 201, response.text
        ticket: str = response.json()["ticket"]
        return ticket

    def live(
        self,
        *,
        ticket: str | None = None,
        headers: dict[str, str] | None = None,
        **options: Any,
    ) -> connect:
        """``/v1/ws`` with the websockets client: ``async with api.live() as ws`` (or await it).
        Authenticates with the key in a header, or with ``ticket`` (``?ticket=``, no header);
        ``headers`` replaces the default header, ``options`` go to ``connect``."""
        url = str(self.http.base_url.copy_with(scheme="ws", path="/v1/ws"))
        if ticket is not None:
            url += f"?ticket={ticket}"
        if headers is None:
            headers = {"Authorization": f"Bearer {self.key}"} if self.key and not ticket else {}
        return connect(
            url,
            additional_headers=headers,
            proxy=None,
            compression=None,
            open_timeout=10,
            **options,
        )

    async def artifacts(self, task_id: str) -> list[dict[str, Any]]:
        response = await self.http.get(f"/v1/tasks/{task_id}/artifacts")
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def all_tasks(self, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = {**params, "limit": 100, **({"cursor": cursor} if cursor else {})}
            page = (await self.http.get("/v1/tasks", params=query)).json()
            items += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                return items

    # --- webhooks (DESIGN.md, *Webhooks (contract)*) ---

    async def create_webhook(self, url: str, **body: Any) -> dict[str, Any]:
        """``POST /v1/webhooks``: the new endpoint, with its ``secret`` (shown only here)."""
        response = await self.http.post("/v1/webhooks", json={"url": url, **body})
        assert response.status_code == 201, response.text
        endpoint: dict[str, Any] = response.json()
        return endpoint

    async def webhook(self, webhook_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/v1/webhooks/{webhook_id}")
        assert response.status_code == 200, response.text
        endpoint: dict[str, Any] = response.json()
        return endpoint

    async def webhooks(self) -> list[dict[str, Any]]:
        response = await self.http.get("/v1/webhooks")
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def delete_webhook(self, webhook_id: str) -> None:
        response = await self.http.delete(f"/v1/webhooks/{webhook_id}")
        assert response.status_code == 204, response.text

    async def webhook_deliveries(self, webhook_id: str, **params: Any) -> list[dict[str, Any]]:
        """An endpoint's whole delivery log, newest first (every page)."""
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = {**params, "limit": 100, **({"cursor": cursor} if cursor else {})}
            response = await self.http.get(f"/v1/webhooks/{webhook_id}/deliveries", params=query)
            assert response.status_code == 200, response.text
            page = response.json()
            items += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                return items
