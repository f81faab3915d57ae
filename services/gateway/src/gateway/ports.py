"""What the gateway needs from outside the process: the API key store (PostgreSQL), the
internal services it relays to (over HTTP and WebSocket, each call signed for one service and
one tenant), the live-connection tickets (Redis), the rate-limit buckets (Redis) and the
tenants' rate-limit overrides (PostgreSQL).
The composition root fills them with the production adapters (``repository.py``,
``upstream.py``, ``tickets.py``, ``rate_limiter.py``), unit tests with the fakes in
tests/unit/fakes.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.rate_limits import Bucket, LimitOverride, Verdict
from gateway.upstream import InternalCall, InternalReply
from relay_shared.composition import Loops, no_loops


class KeyStore(Protocol):
    async def tenant_for(self, raw_key: str) -> str | None:
        """The tenant owning this live key, or None for an unknown or revoked key; raises
        KeyStoreUnavailable while it cannot answer."""
        ...


class ReplyStream(Protocol):
    """An answer whose body arrives over time (an event stream); close it when done."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def chunks(self) -> AsyncIterator[bytes]: ...

    async def read(self) -> bytes:
        """The whole body (for a short error answer); raises ServiceUnreachable."""
        ...

    async def aclose(self) -> None: ...


class LiveChannel(Protocol):
    """A WebSocket to an internal service (the notifier's live connections)."""

    async def send(self, text: str) -> bool:
        """Send a text frame; False when the connection has closed."""
        ...

    async def receive(self) -> str | None:
        """The next text frame; None once the connection has closed."""
        ...

    @property
    def close_code(self) -> int | None: ...

    async def aclose(self) -> None: ...


class InternalServices(Protocol):
    """The tasks, artifacts and notifier services; raises ServiceUnreachable without an answer."""

    async def send(self, call: InternalCall) -> InternalReply: ...

    async def stream(self, call: InternalCall) -> ReplyStream: ...

    async def connect(self, call: InternalCall) -> LiveChannel: ...


class Tickets(Protocol):
    """Single-use, tenant-bound, short-lived tickets for browsers' live connections
    (tickets.py); both raise TicketsUnavailable while the store cannot answer."""

    async def issue(self, tenant_id: str, *, ttl_seconds: int) -> str: ...

    async def redeem(self, ticket: str) -> str | None:
        """The ticket's tenant, once; None for an unknown, used or expired ticket."""
        ...


class RateLimiter(Protocol):
    """Token buckets shared by every gateway replica."""

    async def acquire(self, buckets: Sequence[Bucket]) -> Sequence[Verdict]:
        """Take one token from each bucket, atomically: from all of them, or, when any is
        empty, from none. One verdict per bucket, in order; raises LimiterUnavailable while
        the buckets cannot be reached."""
        ...


class LimitOverrides(Protocol):
    """The tenants' own rate limits (``relay admin set-limits``)."""

    async def override_for(self, tenant_id: str) -> LimitOverride | None:
        """The tenant's override, or None; raises LimitOverridesUnavailable."""
        ...


@dataclass(frozen=True)
class Ports:
    """What the gateway service needs from outside the process."""

    keys: KeyStore
    services: InternalServices
    tickets: Tickets
    limiter: RateLimiter
    limit_overrides: LimitOverrides
    # nothing runs beside the HTTP server: the gateway consumes no events
    loops: Loops = no_loops
