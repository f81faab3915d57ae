"""The webhook sender: one HTTP POST per attempt, guarded against server-side request forgery.

A URL's host is resolved and every address it resolves to is checked: loopback, private,
link-local (the cloud metadata service among them), shared, multicast, reserved and unspecified
addresses are refused, unless ``RELAY_WEBHOOKS_ALLOW_PRIVATE``. The check runs when an endpoint
is saved and again on every attempt, and the attempt connects to the very address it checked
(the name stays in the Host header and TLS server name), so a name that re-resolves to an
internal address between the check and the call (DNS rebinding) gets nowhere.

An attempt never follows a redirect, reads at most ``MAX_RESPONSE_BYTES`` of the answer, and
has ``timeout_seconds`` for everything (a receiver that trickles bytes is cut off too). The
client is not traced into the request headers: a receiver outside never sees our trace ids.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from urllib.parse import urlsplit

import anyio
import httpx
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

from notifier.ports import UnsafeTarget
from notifier.webhook_records import AttemptResult

log = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 64 * 1024
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def refusal(address: IPAddress) -> str | None:
    """Why ``address`` may not be called, or None when it is a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local (cloud metadata lives there)"
    if address.is_private:
        return "private"
    if address.is_multicast:
        return "multicast"
    if address.is_unspecified or address.is_reserved or not address.is_global:
        return "not a public address"
    return None


class HttpWebhookSender:
    def __init__(
        self, *, timeout_seconds: float, allow_private: bool, max_connections: int
    ) -> None:
        self._timeout = timeout_seconds
        self._allow_private = allow_private
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment: it would skip the address check
            timeout=httpx.Timeout(timeout_seconds),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )
        HTTPXClientInstrumentor.uninstrument_client(self._client)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def check(self, url: str) -> None:
        await self._address(url)

    async def _address(self, url: str) -> str | None:
        """The checked address to connect to, or None when any address is allowed."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise UnsafeTarget("only https and http URLs are called")
        host = parts.hostname
        if not host:
            raise UnsafeTarget("the URL names no host")
        if self._allow_private:
            return None
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [literal]
        else:
            try:
                infos = await anyio.getaddrinfo(
                    host,
                    parts.port or (443 if parts.scheme == "https" else 80),
                    type=socket.SOCK_STREAM,
                )
            except OSError as exc:
                log.info("webhook host %s does not resolve: %s", host, exc)
                raise UnsafeTarget(f"{host} does not resolve") from exc
            addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        if not addresses:
            raise UnsafeTarget(f"{host} does not resolve")
        for address in addresses:
            reason = refusal(address)
            if reason is not None:
                # the caller learns only that it is refused, not what our DNS says the name is
                log.info("webhook host %s refused: %s address %s", host, reason, address)
                raise UnsafeTarget(
                    f"{host} is not a public address (loopback, private, link-local and "
                    "metadata addresses are refused)"
                )
        return str(addresses[0])

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> AttemptResult:
        started = time.perf_counter()

        def result(status: int | None, error: str | None) -> AttemptResult:
            return AttemptResult(status, error, time.perf_counter() - started)

        try:
            with anyio.fail_after(self._timeout):
                request = await self._request(url, headers, body)
                response = await self._client.send(request, stream=True)
                try:
                    await _read_some(response)
                finally:
                    await response.aclose()
        except UnsafeTarget as exc:
            return result(None, f"refused: {exc}")
        except TimeoutError:
            return result(None, f"no answer within {self._timeout:g}s")
        except httpx.HTTPError as exc:
            return result(None, f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__)
        except OSError as exc:
            return result(None, f"{type(exc).__name__}: {exc}"[:500])
        if response.is_redirect:
            return result(response.status_code, "redirects are not followed")
        return result(response.status_code, None)

    async def _request(self, url: str, headers: dict[str, str], body: bytes) -> httpx.Request:
        address = await self._address(url)
        target = httpx.URL(url)
        if address is None:
            return self._client.build_request("POST", target, headers=headers, content=body)
        # connect to the address just checked; the name stays in Host and the TLS server name
        host_header = target.netloc.decode("ascii")
        request = self._client.build_request(
            "POST",
            target.copy_with(host=address),
            headers={**headers, "host": host_header},
            content=body,
            extensions={"sni_hostname": target.host},
        )
        return request


async def _read_some(response: httpx.Response) -> None:
    """Read up to MAX_RESPONSE_BYTES of the answer (what a receiver says is not used; a huge
    answer is cut off, not downloaded)."""
    read = 0
    async for chunk in response.aiter_raw():
        read += len(chunk)
        if read >= MAX_RESPONSE_BYTES:
            return
