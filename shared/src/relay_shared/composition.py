"""The seam every service is built through, the same in all of them.

A service's ``ports.py`` declares what it needs from outside the process (storage, AWS, clock,
model…) as Protocols, bundled in one frozen ``Ports`` dataclass. Its ``app.py`` has:

- ``open_ports(settings, runtime) -> Ports``: the production adapters (PostgreSQL, AWS, Redis),
  opened through the ``ServiceRuntime`` so that they are waited for and closed with it;
- ``build(settings, ports) -> Service``: the use cases on those ports, no I/O;
- ``create_app(settings=None, *, ports=open_ports)``: the HTTP app around ``compose(...)``.

Unit tests pass ``ports=given(fakes.ports())``; an integration test that swaps one adapter
wraps ``open_ports`` (``replace(await open_ports(s, r), provider=fake)``).

``Ports.loops(service)`` returns what runs beside the HTTP server (consumers, outbox relay,
sweepers); fakes usually return none and tests drive the handlers themselves.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from relay_shared import internal_auth
from relay_shared.loops import Loop, background
from relay_shared.runtime import ServiceRuntime, Start
from relay_shared.settings import ServiceSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)

S = TypeVar("S", bound=ServiceSettings)
Service = TypeVar("Service")
Service_contra = TypeVar("Service_contra", contravariant=True)


class HasLoops(Protocol[Service_contra]):
    """What ``compose`` needs of a service's ``Ports``."""

    @property
    def loops(self) -> Callable[[Service_contra], Awaitable[Sequence[Loop]]]: ...


P = TypeVar("P", bound=HasLoops[Any])
# ``Ports.loops``: given the service ``build`` made, what runs beside the HTTP server. Typed on
# Any so that ports.py, below the use cases, need not import them.
Loops = Callable[[Any], Awaitable[Sequence[Loop]]]
OpenPorts = Callable[[S, ServiceRuntime], Awaitable[P]]


async def no_loops(service: object) -> Sequence[Loop]:
    """``Ports.loops`` of a service (or a fake) with nothing to run in the background."""
    return ()


def given(ports: P) -> Callable[[Any, ServiceRuntime], Awaitable[P]]:
    """``open_ports`` for ports built beforehand (unit tests: the service's fakes)."""

    async def open_given(settings: Any, runtime: ServiceRuntime) -> P:
        return ports

    return open_given


def compose(
    settings: S,
    open_ports: Callable[[S, ServiceRuntime], Awaitable[P]],
    build: Callable[[S, P], Service],
) -> Start:
    """The start function of ``create_service_app``: open the ports (waiting for what they
    need), build the service on them, run its loops until the app stops.

    Routes find the service at ``request.app.state.service``; tests also find
    ``app.state.ports`` and ``app.state.loops``."""

    @asynccontextmanager
    async def start(app: FastAPI, runtime: ServiceRuntime) -> AsyncIterator[None]:
        ports = await open_ports(settings, runtime)
        service = build(settings, ports)
        loops = (*await ports.loops(service), *await _key_refresh(settings, app, runtime))
        app.state.ports = ports
        app.state.service = service
        app.state.loops = loops
        async with background(loops, grace_seconds=settings.shutdown_grace_seconds):
            yield

    return start


async def _key_refresh(
    settings: ServiceSettings, app: FastAPI, runtime: ServiceRuntime
) -> Sequence[Loop]:
    """A service that verifies internal tokens (``app.state.token_verifier``) and is given a
    JWKS secret re-reads it in the background, the first time before it serves."""
    verifier = getattr(app.state, "token_verifier", None)
    if verifier is None or not settings.internal_auth_jwks_secret_id:
        return ()
    refresh = internal_auth.trusted_keys_refresh(settings, verifier, secret_reader(runtime))
    assert refresh is not None
    try:
        await refresh.refresh()
    except Exception as exc:  # the configured keys still work; the loop tries again
        log.warning("internal auth: cannot read the trusted keys yet: %s", exc)
    return (refresh,)


def secret_reader(runtime: ServiceRuntime) -> internal_auth.ReadSecret:
    """Reads a Secrets Manager secret's text through one client of the runtime's."""
    client: Any = None

    async def read(secret_id: str) -> str:
        nonlocal client
        if client is None:
            client = await runtime.aws_client("secretsmanager")
        answer = await client.get_secret_value(SecretId=secret_id)
        return str(answer.get("SecretString") or "")

    return read
