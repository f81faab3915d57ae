"""The gateway built through its composition root on the in-memory fakes (fakes.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from gateway.app import create_app
from gateway.settings import GatewaySettings
from relay_devkit.testing import wait_ready
from relay_shared.composition import given
from relay_shared.internal_auth import generate_keypair

from .fakes import ACME_KEY, FakeInternalServices, FakeKeyStore, Fakes

MAX_BODY_BYTES = 2048
KEY_CACHE_SECONDS = 0.2  # a revoked key works this long at most (RELAY_API_KEY_CACHE_SECONDS)


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


@pytest.fixture
def services(fakes: Fakes) -> FakeInternalServices:
    """The internal services the gateway relays to, as the test arranges them."""
    return fakes.services


@pytest.fixture
def keys(fakes: Fakes) -> FakeKeyStore:
    """The API key store: ``ACME_KEY`` and ``GLOBEX_KEY`` are live."""
    return fakes.keys


@pytest.fixture
async def app(fakes: Fakes) -> AsyncIterator[FastAPI]:
    settings = GatewaySettings(
        max_body_bytes=MAX_BODY_BYTES,
        api_key_cache_seconds=KEY_CACHE_SECONDS,
        internal_auth_private_key=generate_keypair()[0],
    )
    app = create_app(settings, ports=given(fakes.ports()))
    async with LifespanManager(app):
        await wait_ready(app)
        yield app


@pytest.fixture
async def anonymous(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


@pytest.fixture
async def acme(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {ACME_KEY}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://gateway", headers=headers
    ) as client:
        yield client
