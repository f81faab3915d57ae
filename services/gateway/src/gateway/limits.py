"""Request limits as pure ASGI middleware: the body size limit, so nothing buffers a body before
it is checked, and the RateLimit fields on every answer of an admitted request.

A declared ``Content-Length`` over the limit is refused before the app runs. A body without one
(chunked) is counted as it is read: the read that crosses the limit fails, whatever the app then
answers is dropped, and the client gets the 413 instead. At most the limit (plus one chunk) is
ever held.
"""

from __future__ import annotations

import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relay_shared.problems import Problem, problem_response

# api.py puts the request's RateLimit fields here, in the request state (scope["state"])
RATE_LIMIT_FIELDS = "rate_limit_fields"


class RateLimitFields:
    """Adds the ``RateLimit-Policy`` and ``RateLimit`` fields api.py recorded for the request
    (rate_limits.Admission.headers) to its answer, whatever made it: the route, a relayed
    refusal, a validation error, a 429, a 413 while reading the body, an event stream."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, object] = scope.setdefault("state", {})

        async def send_with_fields(message: Message) -> None:
            fields = state.get(RATE_LIMIT_FIELDS)
            if message["type"] == "http.response.start" and isinstance(fields, dict) and fields:
                added = [(name.lower().encode(), value.encode()) for name, value in fields.items()]
                message = {**message, "headers": [*message.get("headers", ()), *added]}
            await send(message)

        await self.app(scope, receive, send_with_fields)


class BodyTooLarge(Exception):
    pass


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server rejects a malformed length before we see it
    return None


class BodySizeLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> Problem:
        return Problem(
            413, "Content Too Large", f"The request body must be at most {self.max_bytes} bytes."
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            await problem_response(self._too_large(), scope.get("path"))(scope, receive, send)
            return

        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # the 413 below replaces whatever the app makes of the failed read
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        with contextlib.suppress(BodyTooLarge):
            await self.app(scope, counting_receive, guarded_send)
        if exceeded and not started:
            await problem_response(self._too_large(), scope.get("path"))(scope, receive, send)
