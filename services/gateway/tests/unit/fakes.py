"""In-memory stand-ins for the gateway's collaborators: the key store and the internal services."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from gateway.keys import KeyStoreUnavailable
from gateway.upstream import InternalCall, InternalReply, ServiceUnreachable
from relay_shared.problems import PROBLEM_JSON


class FakeKeyStore:
    def __init__(self, tenants_by_key: Mapping[str, str]) -> None:
        self.tenants_by_key = dict(tenants_by_key)
        self.available = True
        self.lookups: list[str] = []

    async def tenant_for(self, raw_key: str) -> str | None:
        self.lookups.append(raw_key)
        if not self.available:
            raise KeyStoreUnavailable("database away")
        return self.tenants_by_key.get(raw_key)


def json_reply(
    status: int, document: Any, *, headers: Mapping[str, str] | None = None
) -> InternalReply:
    return InternalReply(
        status,
        {"content-type": "application/json", **(headers or {})},
        json.dumps(document).encode(),
    )


def problem_reply(status: int, title: str, detail: str, **headers: str) -> InternalReply:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return InternalReply(
        status, {"content-type": PROBLEM_JSON, **headers}, json.dumps(body).encode()
    )


class FakeStream:
    """An upstream event stream: ``chunks`` then, if ``endless``, silence until closed."""

    def __init__(
        self,
        chunks: Sequence[bytes] = (),
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        endless: bool = False,
    ) -> None:
        self.status = status
        self.headers: Mapping[str, str] = headers or {"content-type": "text/event-stream"}
        self._chunks = list(chunks)
        self._body = body
        self._endless = endless
        self.closed = False
        self.sent = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            self.sent += 1
            yield chunk
        if self._endless:
            await asyncio.Event().wait()  # like a quiet stream between heartbeats

    async def read(self) -> bytes:
        return self._body

    async def aclose(self) -> None:
        self.closed = True


class FakeInternalServices:
    """Answers from a table of canned replies keyed by (service, method, path); records every
    call. Anything not in the table answers a 404 problem, like a missing object would."""

    def __init__(self) -> None:
        self.calls: list[InternalCall] = []
        self.unreachable: set[str] = set()
        self._replies: dict[tuple[str, str, str], InternalReply] = {}
        self._streams: dict[tuple[str, str], FakeStream] = {}

    def answer(self, service: str, method: str, path: str, reply: InternalReply) -> None:
        self._replies[(service, method, path)] = reply

    def stream_from(self, service: str, path: str, stream: FakeStream) -> None:
        self._streams[(service, path)] = stream

    def services_called(self) -> list[str]:
        return [call.service for call in self.calls]

    async def send(self, call: InternalCall) -> InternalReply:
        self.calls.append(call)
        if call.service in self.unreachable:
            raise ServiceUnreachable(call.service)
        missing = problem_reply(404, "Not Found", f"{call.path} is not there")
        return self._replies.get((call.service, call.method, call.path), missing)

    async def stream(self, call: InternalCall) -> FakeStream:
        self.calls.append(call)
        if call.service in self.unreachable:
            raise ServiceUnreachable(call.service)
        missing = FakeStream(status=404, headers={"content-type": PROBLEM_JSON}, body=b"{}")
        return self._streams.get((call.service, call.path), missing)


def task_document(
    task_id: str, *, prompt: str = "Write a haiku.", status: str = "queued"
) -> dict[str, Any]:
    """A task as the tasks service shows it."""
    zero = {
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cost_usd": 0.0,
    }
    return {
        "id": task_id,
        "status": status,
        "prompt": prompt,
        "model": "claude-sonnet-4-5",
        "metadata": {},
        "limits": {
            "max_turns": 50,
            "max_output_tokens": 32000,
            "max_wall_seconds": 1800.0,
            "max_cost_usd": None,
        },
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
        "started_at": None,
        "finished_at": None,
        "usage": zero,
        "error": None,
        "result": None,
    }
