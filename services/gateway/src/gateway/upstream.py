"""Calls from the gateway to the internal services, each signed for one service and one tenant:
what a call and its answer are, and ``HttpInternalServices``, the production adapter of the
``InternalServices`` port (ports.py)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from opentelemetry import propagate
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from relay_shared.internal_auth import TokenIssuer
from relay_shared.tracing import tracer

log = logging.getLogger(__name__)

# A timeline event can carry a long agent message; far above any real one, still bounded.
UPSTREAM_MAX_MESSAGE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class InternalCall:
    """One request to an internal service on behalf of ``tenant_id``."""

    service: str  # tasks, artifacts or notifier: also the token's audience
    method: str
    path: str
    tenant_id: str
    params: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None


@dataclass(frozen=True)
class InternalReply:
    status: int
    headers: Mapping[str, str]
    body: bytes = b""

    def __post_init__(self) -> None:
        # frozen: normalise once so lookups can ignore case
        object.__setattr__(self, "headers", {k.lower(): v for k, v in self.headers.items()})

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        return json.loads(self.body)


class ServiceUnreachable(Exception):
    """No answer from an internal service: refused, reset or timed out."""

    def __init__(self, service: str) -> None:
        super().__init__(f"{service} is unreachable")
        self.service = service


# what a call that gets no answer raises: refused, reset, or timed out
_NO_ANSWER = (aiohttp.ClientError, TimeoutError)


class HttpReplyStream:
    """``ReplyStream`` on an aiohttp response whose body has not been read yet."""

    def __init__(self, service: str, response: aiohttp.ClientResponse) -> None:
        self._service = service
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except _NO_ANSWER as exc:
            # End the stream cleanly; the client reconnects with Last-Event-ID and misses nothing.
            log.warning("event stream from %s broke off: %r", self._service, exc)

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except _NO_ANSWER as exc:
            raise ServiceUnreachable(self._service) from exc

    async def aclose(self) -> None:
        if self._response.content.at_eof():
            self._response.release()  # the answer ended: its connection may serve another call
        else:
            self._response.close()  # the client left mid-stream: this connection is done


class WebSocketChannel:
    """``LiveChannel`` on a ``websockets`` client connection."""

    def __init__(self, connection: ClientConnection) -> None:
        self._connection = connection

    async def send(self, text: str) -> bool:
        try:
            await self._connection.send(text)
        except ConnectionClosed:
            return False
        return True

    async def receive(self) -> str | None:
        try:
            message = await self._connection.recv()
        except ConnectionClosed:
            return None
        return message if isinstance(message, str) else message.decode()

    @property
    def close_code(self) -> int | None:
        return self._connection.close_code

    async def aclose(self) -> None:
        await self._connection.close()


class HttpInternalServices:
    """``InternalServices`` over one shared ``aiohttp.ClientSession`` (keep-alive connections
    to every service), each call with a token for its service and tenant (TokenIssuer reuses
    one for half its lifetime). aiohttp rather than httpx: on this hop it took a tenth of the
    CPU per call (docs/benchmarks.md, ADR 0020)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        issuer: TokenIssuer,
        base_urls: Mapping[str, str],
        *,
        timeout: float = 15.0,
        connect_timeout: float = 3.0,
    ) -> None:
        self._connect_timeout = connect_timeout
        self._session = session
        self._issuer = issuer
        self._base_urls = {name: url.rstrip("/") for name, url in base_urls.items()}
        # a call: connect (pool wait included) within connect_timeout, then no pause in the
        # answer longer than timeout; a stream: no limit once connected (events may be minutes
        # apart; the service sends keep-alive comments)
        self._call_timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout, sock_read=timeout
        )
        self._stream_timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout)

    def _request(
        self, call: InternalCall, timeout: aiohttp.ClientTimeout, trace_headers: dict[str, str]
    ) -> Any:  # aiohttp's _RequestContextManager
        token = self._issuer.headers(audience=call.service, tenant_id=call.tenant_id)
        return self._session.request(
            call.method,
            self._base_urls[call.service] + call.path,
            params=dict(call.params),
            headers={**call.headers, **token, **trace_headers},
            data=call.body,
            timeout=timeout,
            allow_redirects=False,
        )

    async def send(self, call: InternalCall) -> InternalReply:
        with _client_span(call) as (span, trace_headers):
            try:
                async with self._request(call, self._call_timeout, trace_headers) as response:
                    body = await response.read()
            except _NO_ANSWER as exc:
                log.warning("%s %s %s failed: %r", call.service, call.method, call.path, exc)
                raise ServiceUnreachable(call.service) from exc
            _answered(span, response.status)
        return InternalReply(response.status, dict(response.headers), body)

    async def stream(self, call: InternalCall) -> HttpReplyStream:
        """The span covers the call until the answer's head arrives, not the stream after it."""
        with _client_span(call) as (span, trace_headers):
            try:
                response = await self._request(call, self._stream_timeout, trace_headers)
            except _NO_ANSWER as exc:
                log.warning("%s %s %s failed: %r", call.service, call.method, call.path, exc)
                raise ServiceUnreachable(call.service) from exc
            _answered(span, response.status)
        return HttpReplyStream(call.service, response)

    async def connect(self, call: InternalCall) -> WebSocketChannel:
        """A WebSocket to ``call.path`` (``ws://`` or ``wss://`` like the service's URL)."""
        base = self._base_urls[call.service]
        url = "ws" + base.removeprefix("http") + call.path
        headers = self._issuer.headers(audience=call.service, tenant_id=call.tenant_id)
        try:
            connection = await connect(
                url,
                additional_headers=headers,
                open_timeout=self._connect_timeout,
                max_size=UPSTREAM_MAX_MESSAGE_BYTES,
                proxy=None,  # internal calls never go through a proxy from the environment
                compression=None,
                close_timeout=2,  # a relay ending must not wait long for a busy notifier
            )
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            log.warning("%s websocket %s failed: %r", call.service, call.path, exc)
            raise ServiceUnreachable(call.service) from exc
        return WebSocketChannel(connection)


@contextmanager
def _client_span(call: InternalCall) -> Iterator[tuple[Span, dict[str, str]]]:
    """A CLIENT span around a call, and the headers that carry it to the service (W3C and X-Ray,
    by the global propagator). Made here rather than by aiohttp's OpenTelemetry trace config,
    whose signal hooks took ~8 % of the gateway's CPU per intake request (ADR 0028)."""
    with tracer().start_as_current_span(
        call.method,
        kind=SpanKind.CLIENT,
        attributes={
            "http.request.method": call.method,
            "server.address": call.service,
            "url.path": call.path,
        },
    ) as span:
        headers: dict[str, str] = {}
        propagate.inject(headers)  # an unsampled trace is passed on as such
        yield span, headers


def _answered(span: Span, status: int) -> None:
    if span.is_recording():
        span.set_attribute("http.response.status_code", status)
        if status >= 400:  # a client span's error, in OpenTelemetry's HTTP conventions
            span.set_status(Status(StatusCode.ERROR))
