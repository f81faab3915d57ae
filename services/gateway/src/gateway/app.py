"""Composition root: settings -> ports -> the gateway's use cases -> the public HTTP app.

In production the ports are PostgreSQL (API keys, rate-limit overrides), the internal services
over HTTP and WebSocket, and Redis (live-connection tickets, rate-limit buckets); nothing runs in
the background. Unit tests pass ``ports=given(fakes.ports())``.
"""

from __future__ import annotations

import binascii
import logging
from collections.abc import Sequence

import aiohttp
from fastapi import FastAPI
from redis.asyncio import Redis

from gateway.api import install_relayed_refusals, router, webhooks
from gateway.console import ConsoleFiles, console_router
from gateway.keys import CachedKeyStore
from gateway.limits import BodySizeLimit, RateLimitFields
from gateway.openapi import finish_openapi
from gateway.ports import Ports
from gateway.rate_limiter import RedisRateLimiter, limiter_redis
from gateway.rate_limits import RateLimits
from gateway.repository import MIGRATIONS, PostgresKeyStore, PostgresLimitOverrides
from gateway.service import Gateway
from gateway.settings import GatewaySettings
from gateway.tickets import RedisTickets
from gateway.upstream import HttpInternalServices
from relay_shared.composition import OpenPorts, compose, secret_reader
from relay_shared.http import create_service_app
from relay_shared.internal_auth import TokenIssuer, signing_key_refresh
from relay_shared.loops import Loop
from relay_shared.readiness import Check, CheckResult
from relay_shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)


class MissingPrivateKey(RuntimeError):
    """The gateway has no usable key to sign its internal calls with."""


def _token_issuer(settings: GatewaySettings) -> TokenIssuer:
    """The signer for internal calls; without it the gateway cannot do anything, so it refuses
    to start."""
    if settings.internal_auth_private_key is None:
        raise MissingPrivateKey(
            "RELAY_INTERNAL_AUTH_PRIVATE_KEY is not set: the gateway signs every internal call "
            "with it (base64url raw Ed25519; relay_shared.internal_auth.generate_keypair makes "
            "a pair, the services get the public half)."
        )
    try:
        return TokenIssuer(
            settings.internal_auth_private_key.get_secret_value(),
            ttl_seconds=settings.internal_token_ttl_seconds,
        )
    except (ValueError, binascii.Error) as exc:
        raise MissingPrivateKey(
            "RELAY_INTERNAL_AUTH_PRIVATE_KEY is not a base64url raw Ed25519 private key."
        ) from exc


async def open_ports(settings: GatewaySettings, runtime: ServiceRuntime) -> Ports:
    """PostgreSQL (migrated; waited for) and one HTTP client for every internal call, closed
    when the service stops."""
    database = await runtime.database(MIGRATIONS)
    keys = PostgresKeyStore(database)
    connect = settings.upstream_connect_timeout
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=0,  # every open event stream holds a connection; a cap would stall new streams
            limit_per_host=0,
            keepalive_timeout=settings.upstream_keep_alive_seconds,
        ),
        trust_env=False,  # internal calls never go through a proxy from the environment
        raise_for_status=False,
        auto_decompress=False,  # bodies are relayed as they come
    )
    runtime.on_stop(session.close)
    issuer = _token_issuer(settings)
    # a new signing key put in its secret is used from the next refresh on (key rotation)
    key_refresh = signing_key_refresh(settings, issuer, secret_reader(runtime))
    if key_refresh is not None:  # a key rotated while this gateway was down: use it at once
        try:
            await key_refresh.refresh()
        except Exception as exc:  # the configured key still works; the loop tries again
            log.warning("internal auth: cannot read the signing key's secret yet: %s", exc)

    async def loops(gateway: Gateway) -> Sequence[Loop]:
        return () if key_refresh is None else (key_refresh,)

    services = HttpInternalServices(
        session,
        issuer,
        {
            "tasks": settings.tasks_url,
            "artifacts": settings.artifacts_url,
            "notifier": settings.notifier_url,
        },
        timeout=settings.upstream_timeout,
        connect_timeout=connect,
    )
    # not critical: without Redis only tickets fail; API keys keep working
    tickets = RedisTickets(runtime.redis(settings.redis_url, critical=False), settings.env)
    return Ports(
        keys=keys,
        services=services,
        tickets=tickets,
        limiter=RedisRateLimiter(_limiter_redis(settings, runtime), settings.env),
        limit_overrides=PostgresLimitOverrides(database),
        loops=loops,
    )


def _limiter_redis(settings: GatewaySettings, runtime: ServiceRuntime) -> Redis:
    """A Redis client of the rate limiter's own, with short timeouts (rate_limiter.py)."""
    redis = limiter_redis(
        settings.redis_url.get_secret_value(),
        timeout_seconds=settings.rate_limit_redis_timeout_seconds,
    )
    runtime.on_stop(redis.aclose)
    return redis


def build(settings: GatewaySettings, ports: Ports) -> Gateway:
    """The use cases on ``ports``; no I/O."""
    rate_limits = RateLimits(
        ports.limiter,
        ports.limit_overrides,
        settings.rate_limit_defaults,
        enabled=settings.rate_limits_enabled,
        overrides_ttl_seconds=settings.rate_limit_overrides_ttl_seconds,
    )
    keys = ports.keys
    if settings.api_key_cache_seconds > 0:
        keys = CachedKeyStore(keys, settings.api_key_cache_seconds)
    return Gateway(
        keys,
        ports.services,
        ports.tickets,
        rate_limits,
        ticket_ttl_seconds=settings.ws_ticket_ttl_seconds,
        send_queue_frames=settings.ws_send_queue_frames,
        send_timeout_seconds=settings.ws_send_timeout_seconds,
        max_subscriptions=settings.ws_max_subscriptions,
    )


def create_app(
    settings: GatewaySettings | None = None,
    *,
    ports: OpenPorts[GatewaySettings, Ports] = open_ports,
) -> FastAPI:
    settings = settings or GatewaySettings()
    _token_issuer(settings)  # fail before serving, not on the first request
    console = console_router(ConsoleFiles(settings.console_dir, settings.console_storage_origins))
    app = create_service_app(
        settings,
        start=compose(settings, ports, build),
        routers=[router, webhooks, console],
        public=True,
        docs=settings.public_api_docs,
    )
    install_relayed_refusals(app)
    finish_openapi(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RateLimitFields)  # outermost: also on BodySizeLimit's late 413
    app.state.runtime.add_check(_rate_limit_check(app))
    return app


def _rate_limit_check(app: FastAPI) -> Check:
    """/readyz's ``rate_limits``: whether limits are enforced or failing open (never critical:
    the gateway keeps serving either way). Probed only once the service is built."""

    async def probe() -> CheckResult:
        gateway: Gateway = app.state.service
        return await gateway.rate_limits.check().probe()

    return Check("rate_limits", probe, critical=False)
