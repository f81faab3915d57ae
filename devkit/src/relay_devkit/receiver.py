"""A real local webhook receiver for tests and benchmarks: an HTTP server that records every
request (arrival time, headers, body) and answers by path, so one receiver plays many endpoints:

- ``/ok/...``: 204
- ``/fail-then-ok/...``: 500 for the first ``failures`` requests of each ``webhook-id``, then 204
- ``/hang/...``: no answer until the receiver stops (or 30 s)
- ``/slow/...``: 204 after ``slow_seconds``
- ``/redirect/...``: 307 to ``/ok/redirected``
- ``/gone/...``: 410
- ``/huge/...``: 200 with a 1 GiB body, streamed
- ``/trickle/...``: 200 with one byte every half second for 30 s

Serve it with ``async with serve_receiver() as receiver:``; ``receiver.url`` is its base URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from relay_devkit.testing import serve_app


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() on arrival

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str = ""
    failures: int = 1  # per webhook-id, on /fail-then-ok
    slow_seconds: float = 2.0
    received: list[Received] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)  # ends every hang
    _failed: Counter[str] = field(default_factory=Counter)

    def at(self, prefix: str) -> list[Received]:
        """What arrived at paths starting with ``prefix`` (e.g. ``"/ok/acme"``)."""
        return [r for r in self.received if r.path.startswith(prefix)]

    async def settled(self, prefix: str, count: int, *, within: float = 30) -> list[Received]:
        """Wait until at least ``count`` requests arrived under ``prefix``."""
        deadline = time.monotonic() + within
        while len(got := self.at(prefix)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(got)} of {count} requests reached {prefix} within {within}s"
                )
            await asyncio.sleep(0.05)
        return got


def receiver_app(state: Receiver) -> FastAPI:
    app = FastAPI()

    @app.post("/{path:path}")
    async def receive(path: str, request: Request) -> Response:
        body = await request.body()
        state.received.append(Received(f"/{path}", dict(request.headers), body, time.time()))
        mode = path.split("/", 1)[0]
        if mode == "fail-then-ok":
            message_id = request.headers.get("webhook-id", "")
            if state._failed[message_id] < state.failures:
                state._failed[message_id] += 1
                return Response(status_code=500)
        elif mode == "hang":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.release.wait(), 30)
        elif mode == "slow":
            await asyncio.sleep(state.slow_seconds)
        elif mode == "redirect":
            return RedirectResponse("/ok/redirected", status_code=307)
        elif mode == "gone":
            return Response(status_code=410)
        elif mode == "huge":
            return StreamingResponse(_gigabyte())
        elif mode == "trickle":
            return StreamingResponse(_trickle())
        return Response(status_code=204)

    return app


async def _gigabyte() -> AsyncIterator[bytes]:
    chunk = b"x" * 65536
    for _ in range(16384):
        yield chunk


async def _trickle() -> AsyncIterator[bytes]:
    for _ in range(60):
        yield b"."
        await asyncio.sleep(0.5)


@asynccontextmanager
async def serve_receiver(**options: Any) -> AsyncIterator[Receiver]:
    """A receiver on a free local port, in this event loop, until the block ends."""
    state = Receiver(**options)
    async with serve_app(receiver_app(state)) as url:
        state.url = url
        try:
            yield state
        finally:
            state.release.set()
