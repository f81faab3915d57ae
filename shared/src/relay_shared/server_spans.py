"""A server span and a duration measurement per HTTP request: what OpenTelemetry's ASGI/FastAPI
instrumentation did for the services, at a fraction of its CPU (ADR 0028).

The contrib middleware was a fifth to a third of the gateway's and the tasks service's CPU per
intake request (py-spy, ``make bench`` intake): it matches the route again to name the span,
builds every attribute of two semantic-convention generations, and records four metric points.
This one names the span after the route the app matched, records the stable conventions' few
attributes and one histogram, and nothing from the query string (a live ticket stays out).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, MutableMapping
from typing import Any

from opentelemetry import metrics, propagate
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relay_shared.tracing import tracer

_meter = metrics.get_meter("relay")
REQUEST_DURATION = _meter.create_histogram(
    "http.server.request.duration",
    unit="s",
    description="Time from a request's arrival to the end of its response, by route and status.",
    explicit_bucket_boundaries_advisory=(
        0.005,
        0.01,
        0.025,
        0.05,
        0.075,
        0.1,
        0.25,
        0.5,
        0.75,
        1,
        2.5,
        5,
        7.5,
        10,
    ),
)


class _HeaderGetter(Getter[dict[str, str]]):
    def get(self, carrier: dict[str, str], key: str) -> list[str] | None:
        value = carrier.get(key.lower())
        return None if value is None else [value]

    def keys(self, carrier: dict[str, str]) -> list[str]:
        return list(carrier)


_GETTER = _HeaderGetter()


def _headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in raw}


def route_of(scope: MutableMapping[str, Any]) -> str | None:
    """The template of the route the app matched (``/v1/tasks/{task_id}``); None when none did."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


class ServerSpans:
    """ASGI middleware: each HTTP request (but those whose path ``untraced`` matches) runs in a
    SERVER span that continues the caller's trace (W3C ``traceparent`` or X-Ray header, by the
    global propagator), named ``METHOD /route/{template}``; its duration is recorded by method,
    route and status. Outermost in the app, so a 503 from the start gate, a 413 and an unhandled
    error's 500 are in it."""

    def __init__(self, app: ASGIApp, *, untraced: re.Pattern[str]) -> None:
        self.app = app
        self.untraced = untraced

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.untraced.search(scope["path"]):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method: str = scope["method"]
        status = 500  # what the client gets when the app fails before it answers
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.path": scope["path"],
            "url.scheme": scope.get("scheme", "http"),
        }
        client = scope.get("client")
        if client:
            attributes["client.address"] = client[0]

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        context = propagate.extract(_headers(scope["headers"]), getter=_GETTER)
        with tracer().start_as_current_span(
            method, context=context, kind=SpanKind.SERVER, attributes=attributes
        ) as span:
            try:
                await self.app(scope, receive, send_status)
            finally:
                route = route_of(scope)
                measured: dict[str, Any] = {
                    "http.request.method": method,
                    "http.response.status_code": status,
                }
                if route is not None:
                    measured["http.route"] = route
                if span.is_recording():
                    if route is not None:
                        span.update_name(f"{method} {route}")
                    span.set_attributes(measured)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                REQUEST_DURATION.record(time.perf_counter() - started, measured)
