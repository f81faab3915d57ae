"""Composition root: the gateway's HTTP app, key store and internal-services client.

Tests pass ``keys`` and ``services`` to run without PostgreSQL or the other services.
"""

from __future__ import annotations

import binascii
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from gateway.api import install_relayed_refusals, router
from gateway.keys import KeyStore
from gateway.limits import BodySizeLimit
from gateway.openapi import finish_openapi
from gateway.repository import MIGRATIONS, PostgresKeyStore
from gateway.service import Gateway
from gateway.settings import GatewaySettings
from gateway.upstream import HttpInternalServices, InternalServices
from relay_shared.http import create_service_app
from relay_shared.internal_auth import TokenIssuer
from relay_shared.runtime import ServiceRuntime


class MissingPrivateKey(RuntimeError):
    pass


def token_issuer(settings: GatewaySettings) -> TokenIssuer:
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


async def _open_key_store(runtime: ServiceRuntime) -> KeyStore:
    return PostgresKeyStore(await runtime.database(MIGRATIONS))


async def _open_internal_services(
    settings: GatewaySettings, issuer: TokenIssuer, runtime: ServiceRuntime
) -> InternalServices:
    connect = settings.upstream_connect_timeout
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(settings.upstream_timeout, connect=connect),
        # every open event stream holds a connection; a cap would stall new streams
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=100),
        trust_env=False,  # internal calls never go through a proxy from the environment
    )
    runtime.on_stop(client.aclose)
    return HttpInternalServices(
        client,
        issuer,
        {
            "tasks": settings.tasks_url,
            "artifacts": settings.artifacts_url,
            "notifier": settings.notifier_url,
        },
        stream_timeout=httpx.Timeout(settings.upstream_timeout, connect=connect, read=None),
    )


def create_app(
    settings: GatewaySettings | None = None,
    *,
    keys: KeyStore | None = None,
    services: InternalServices | None = None,
) -> FastAPI:
    settings = settings or GatewaySettings()
    issuer = token_issuer(settings)  # fail before serving, not on the first request

    @asynccontextmanager
    async def start(app: FastAPI, runtime: ServiceRuntime) -> AsyncIterator[None]:
        app.state.keys = keys or await _open_key_store(runtime)
        app.state.gateway = Gateway(
            services or await _open_internal_services(settings, issuer, runtime)
        )
        yield

    app = create_service_app(settings, start=start, routers=[router], public=True)
    install_relayed_refusals(app)
    finish_openapi(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app
