"""What the gateway needs from outside the process: the API key store (PostgreSQL) and the
internal services it relays to (over HTTP, each call signed for one service and one tenant).
The composition root fills them with the production adapters (``repository.py``,
``upstream.py``), unit tests with the fakes in tests/unit/fakes.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Protocol

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


class InternalServices(Protocol):
    """The tasks, artifacts and notifier services; raises ServiceUnreachable without an answer."""

    async def send(self, call: InternalCall) -> InternalReply: ...

    async def stream(self, call: InternalCall) -> ReplyStream: ...


@dataclass(frozen=True)
class Ports:
    """What the gateway service needs from outside the process."""

    keys: KeyStore
    services: InternalServices
    # nothing runs beside the HTTP server: the gateway consumes no events
    loops: Loops = no_loops
