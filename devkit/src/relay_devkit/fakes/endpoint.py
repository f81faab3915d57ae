"""The engine every fake model endpoint shares: a queue of turns, a record of every call, and a
streaming body that notices when the client goes away.

Servable in the test's own event loop (``relay_devkit.testing.serve_app(fake.app)``) or, where the
client is another process, on a thread with its own loop (``with fake.running_in_thread()``).
State is guarded by a lock because the server thread and the test read and write it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from relay_devkit.fakes.turns import (
    ApiError,
    ModelFunction,
    Reply,
    TokenUsage,
    Turn,
    message_json,
    stream_events,
)
from relay_ops.stack.moto import free_port


class DroppedConnection(Exception):
    """Raised inside the server to make it close the connection mid-body (a dropped stream)."""


class _QuietDrops(logging.Filter):
    """uvicorn logs an exception that ends a response as an application error; a drop the test
    asked for is not one."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DroppedConnection))


logging.getLogger("uvicorn.error").addFilter(_QuietDrops())


@dataclass
class ModelCall:
    """One request the fake received and how its answer went (times are time.monotonic())."""

    path: str
    model: str
    headers: dict[str, str]
    body: dict[str, Any]
    streamed: bool
    turn: Turn
    received_at: float = field(default_factory=time.monotonic)
    events_sent: int = 0
    finished: bool = False  # the whole answer was sent
    disconnected_at: float | None = None  # the client closed the connection before the end

    @property
    def credential(self) -> str | None:
        """The key or token the client sent: ``x-api-key``, or a bearer token (the SDK sends
        API keys as ``Authorization: Bearer``; Vertex sends its OAuth token so)."""
        if "x-api-key" in self.headers:
            return self.headers["x-api-key"]
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        return token if scheme.lower() == "bearer" else None

    @property
    def reported_usage(self) -> TokenUsage:
        """Usage the client was told about: a reply's, when it was sent to the end."""
        if isinstance(self.turn, Reply) and self.finished:
            return self.turn.usage
        return TokenUsage(0, 0)


class FakeModelApi(ABC):
    """Scripted answers: ``script(turn, ...)`` queues them in order; once the queue is empty the
    ``model`` function (if any) answers from the request. With neither, a call gets a 400 that
    says so, which the clients do not retry, so a test missing a turn fails fast."""

    def __init__(self, *, model: ModelFunction | None = None) -> None:
        self._lock = threading.Lock()
        self._turns: deque[Turn] = deque()
        self._model = model
        self._calls: list[ModelCall] = []
        self.app = Starlette(routes=self.routes())

    # -- scripting and inspection (test side) --

    def script(self, *turns: Turn) -> None:
        with self._lock:
            self._turns.extend(turns)

    def answer_with(self, model: ModelFunction | None) -> None:
        with self._lock:
            self._model = model

    @property
    def calls(self) -> list[ModelCall]:
        with self._lock:
            return list(self._calls)

    def reported_usage(self) -> TokenUsage:
        """The usage of every reply sent in full, summed: what a client should have counted."""
        total = TokenUsage(0, 0)
        for call in self.calls:
            total += call.reported_usage
        return total

    @contextlib.contextmanager
    def running_in_thread(self) -> Iterator[str]:
        """Serve on a background thread with its own event loop; yields the base URL."""
        port = free_port()
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=port, log_config=None, lifespan="off"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name=f"fake-{type(self).__name__}")
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                thread.join(5)
                raise RuntimeError(f"{type(self).__name__} did not start on port {port}")
            time.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(10)

    # -- wire format (each fake) --

    @abstractmethod
    def routes(self) -> Sequence[Route]: ...

    @abstractmethod
    def error_response(self, error: ApiError) -> Response: ...

    @abstractmethod
    def encode_event(self, event: dict[str, Any]) -> bytes: ...

    @abstractmethod
    def encode_stream_error(self, error: ApiError) -> bytes: ...

    stream_media_type = "text/event-stream"

    # -- serving (server side) --

    def _next_turn(self, body: dict[str, Any]) -> Turn:
        with self._lock:
            if self._turns:
                return self._turns.popleft()
            model = self._model
        if model is None:
            return ApiError(400, "invalid_request_error", "fake model: no turn scripted")
        return model(body)

    async def answer(
        self, request: Request, *, model: str, body: dict[str, Any], streamed: bool
    ) -> Response:
        """Record the call and answer it with the next turn, in this fake's wire format."""
        turn = self._next_turn(body)
        call = ModelCall(
            path=request.url.path,
            model=model,
            headers=dict(request.headers),
            body=body,
            streamed=streamed,
            turn=turn,
        )
        with self._lock:
            self._calls.append(call)
        message_id = f"msg_fake_{uuid.uuid4().hex[:20]}"
        if isinstance(turn, ApiError) and (turn.after_events is None or not streamed):
            call.finished = True
            return self.error_response(turn)
        if not streamed:
            assert isinstance(turn, Reply)
            call.finished = True
            return JSONResponse(message_json(turn, model=model, message_id=message_id))
        return StreamBody(self, call, model=model, message_id=message_id)

    def stream_chunks(self, turn: Turn, *, model: str, message_id: str) -> list[bytes]:
        if isinstance(turn, ApiError):
            # a stream that starts like a reply, then fails after ``after_events`` events
            head = stream_events(Reply(), model=model, message_id=message_id)
            chunks = [self.encode_event(e) for e in head[: turn.after_events]]
            return [*chunks, self.encode_stream_error(turn)]
        return [
            self.encode_event(e) for e in stream_events(turn, model=model, message_id=message_id)
        ]


class StreamBody(Response):
    """A 200 streaming answer, sent event by event; records the events sent and the moment the
    client disconnected (a watcher reads ``http.disconnect`` while the events go out)."""

    def __init__(self, api: FakeModelApi, call: ModelCall, *, model: str, message_id: str) -> None:
        super().__init__(media_type=api.stream_media_type)
        # a stream has no length: drop the content-length Response computed for an empty body
        self.raw_headers = [(b"content-type", api.stream_media_type.encode())]
        self._chunks = api.stream_chunks(call.turn, model=model, message_id=message_id)
        self._call = call
        turn = call.turn
        self._delay = turn.delay if isinstance(turn, Reply) else 0.0
        self._drop_after = turn.drop_after if isinstance(turn, Reply) else None
        self._cut_after = turn.cut_after if isinstance(turn, Reply) else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            if not self._call.finished:
                self._call.disconnected_at = time.monotonic()
            gone.set()

        watcher = asyncio.create_task(watch())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            for index, chunk in enumerate(self._chunks):
                if index == self._drop_after:
                    raise DroppedConnection(f"fake: dropping the stream after {index} events")
                if index == self._cut_after:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    return
                if index and self._delay and await _wait(gone, self._delay):
                    return
                if gone.is_set():
                    return
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                self._call.events_sent += 1
            self._call.finished = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watcher.cancel()


async def _wait(event: asyncio.Event, seconds: float) -> bool:
    """Wait up to ``seconds`` for ``event``; True if it was set."""
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        return False
    return True
