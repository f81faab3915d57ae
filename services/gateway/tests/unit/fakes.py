"""In-memory implementations of the gateway's ports (gateway.ports): the key store, the
internal services, the tickets, the rate limiter and the rate-limit overrides; ``FakeUpstream``,
the internal services on a real socket for the integration tests; and ``Fakes``, one of each
in-memory fake, whose ``ports()`` is the gateway's whole outside world."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from gateway.keys import KeyStoreUnavailable, issue_key
from gateway.ports import Ports
from gateway.rate_limits import Bucket, LimiterUnavailable, LimitOverride, Verdict
from gateway.tickets import TicketsUnavailable, issue_ticket
from gateway.upstream import InternalCall, InternalReply, ServiceUnreachable
from relay_shared.problems import PROBLEM_JSON

# the live API keys the fake key store knows, one per tenant
ACME_KEY = issue_key().raw
GLOBEX_KEY = issue_key().raw


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


class FakeTickets:
    """Tickets in a dict; ``expire`` makes every issued ticket stale, as time would."""

    def __init__(self) -> None:
        self.tenants: dict[str, str] = {}
        self.available = True
        self.ttl_seconds: int | None = None

    async def issue(self, tenant_id: str, *, ttl_seconds: int) -> str:
        if not self.available:
            raise TicketsUnavailable("redis away")
        self.ttl_seconds = ttl_seconds
        ticket = issue_ticket()
        self.tenants[ticket] = tenant_id
        return ticket

    async def redeem(self, ticket: str) -> str | None:
        if not self.available:
            raise TicketsUnavailable("redis away")
        return self.tenants.pop(ticket, None)

    def expire(self) -> None:
        self.tenants.clear()


class FakeRateLimiter:
    """Token buckets in a dict, by GCRA as the Redis script does, on a clock the test moves
    (``advance``); ``available = False`` is Redis away."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.available = True
        self.tats: dict[tuple[str, str], float] = {}  # (tenant, limit) -> when full again
        self.calls: list[list[Bucket]] = []

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def acquire(self, buckets: Sequence[Bucket]) -> list[Verdict]:
        self.calls.append(list(buckets))
        if not self.available:
            raise LimiterUnavailable("redis away")
        now = self.now
        plans = []
        for bucket in buckets:
            interval = 1 / bucket.limit.per_second
            tat = max(self.tats.get((bucket.tenant_id, bucket.limit.name), now), now)
            plans.append((bucket, interval, tat, tat - now <= (bucket.limit.burst - 1) * interval))
        every = all(ok for *_, ok in plans)
        verdicts = []
        for bucket, interval, before, ok in plans:
            burst = bucket.limit.burst
            retry = 0.0 if ok else before - now - (burst - 1) * interval
            tat = before + interval if every else before
            if every:
                self.tats[(bucket.tenant_id, bucket.limit.name)] = tat
            remaining = int((burst * interval - (tat - now)) / interval + 1e-9)
            verdicts.append(Verdict(ok, remaining, tat - now, retry))
        return verdicts


class FakeLimitOverrides:
    """Overrides in a dict; ``reads`` counts the look-ups (the gateway caches them)."""

    def __init__(self) -> None:
        self.overrides: dict[str, LimitOverride] = {}
        self.reads = 0

    async def override_for(self, tenant_id: str) -> LimitOverride | None:
        self.reads += 1
        return self.overrides.get(tenant_id)


class FakeChannel:
    """The notifier's end of a live connection: records what the gateway sends; the test
    pushes frames with ``frame`` and ends it with ``end``."""

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self.sent: list[str] = []
        self.closed = False
        self.close_code: int | None = None
        self._frames: asyncio.Queue[str | None] = asyncio.Queue()
        # a test over the synchronous test client pushes frames from its own thread
        self._loop = asyncio.get_running_loop()

    def frame(self, text: str) -> None:
        self._loop.call_soon_threadsafe(self._frames.put_nowait, text)

    def end(self, code: int = 1001) -> None:
        self.close_code = code
        self._loop.call_soon_threadsafe(self._frames.put_nowait, None)

    async def send(self, text: str) -> bool:
        if self.close_code is not None:
            return False
        self.sent.append(text)
        return True

    async def receive(self) -> str | None:
        return await self._frames.get()

    async def aclose(self) -> None:
        self.closed = True


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
        self.channels: list[FakeChannel] = []  # live connections opened, oldest first

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

    async def connect(self, call: InternalCall) -> FakeChannel:
        self.calls.append(call)
        if call.service in self.unreachable:
            raise ServiceUnreachable(call.service)
        channel = FakeChannel(call.tenant_id)
        self.channels.append(channel)
        return channel


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


# --- on a real socket (integration tests) -------------------------------------------------------


@dataclass
class Received:
    """One request ``FakeUpstream`` was sent."""

    method: str
    path: str
    authorization: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeUpstream:
    """A stand-in for the internal services on a real socket (serve ``app()``): it answers the
    few internal routes the gateway calls and keeps what it was sent (the tokens above all)."""

    received: list[Received] = field(default_factory=list)
    release_second_event: asyncio.Event = field(default_factory=asyncio.Event)
    stream_closed: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/internal/tasks", self.submit, methods=["POST"]),
                Route("/internal/tasks/{task_id}", self.task, methods=["GET"]),
                Route("/internal/tasks/{task_id}/cancel", self.cancel, methods=["POST"]),
                Route("/internal/tasks/{task_id}/events", self.events, methods=["GET"]),
            ]
        )

    async def _keep(self, request: Request) -> None:
        self.received.append(
            Received(
                request.method,
                request.url.path,
                request.headers.get("authorization", ""),
                dict(request.headers),
                await request.body(),
            )
        )

    async def submit(self, request: Request) -> Response:
        await self._keep(request)
        return JSONResponse({"id": "t-1", "status": "queued"}, status_code=202)

    async def task(self, request: Request) -> Response:
        await self._keep(request)
        return JSONResponse({"id": request.path_params["task_id"], "status": "queued"})

    async def cancel(self, request: Request) -> Response:
        # the first request cancels; later ones find the task finished, as a real one might be
        await self._keep(request)
        if sum(r.path.endswith("/cancel") for r in self.received) == 1:
            return JSONResponse(
                {"id": request.path_params["task_id"], "status": "cancelling"}, status_code=202
            )
        return JSONResponse(
            {"title": "Task already finished", "status": 409, "task_status": "cancelled"},
            status_code=409,
            media_type="application/problem+json",
        )

    async def events(self, request: Request) -> Response:
        await self._keep(request)
        return StreamingResponse(self._timeline(), media_type="text/event-stream")

    async def _timeline(self) -> AsyncIterator[bytes]:
        try:
            for seq in (1, 2):
                if seq == 2:
                    await self.release_second_event.wait()
                data = json.dumps({"type": "task.progressed", "seq": seq})
                yield f"id: {seq}\nevent: task.progressed\ndata: {data}\n\n".encode()
            await asyncio.Event().wait()  # quiet, as between heartbeats
        finally:
            self.stream_closed.set()


@dataclass
class Fakes:
    """One of each fake; ``ports()`` is the gateway's whole outside world, in memory."""

    keys: FakeKeyStore = field(
        default_factory=lambda: FakeKeyStore({ACME_KEY: "acme", GLOBEX_KEY: "globex"})
    )
    services: FakeInternalServices = field(default_factory=FakeInternalServices)
    tickets: FakeTickets = field(default_factory=FakeTickets)
    limiter: FakeRateLimiter = field(default_factory=FakeRateLimiter)
    limit_overrides: FakeLimitOverrides = field(default_factory=FakeLimitOverrides)

    def ports(self) -> Ports:
        return Ports(
            keys=self.keys,
            services=self.services,
            tickets=self.tickets,
            limiter=self.limiter,
            limit_overrides=self.limit_overrides,
        )
