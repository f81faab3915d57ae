from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from gateway.app import create_app
from gateway.keys import issue_key
from gateway.settings import GatewaySettings
from relay.testing import wait_ready
from relay_shared.internal_auth import generate_keypair

from .fakes import FakeInternalServices, FakeKeyStore

ACME_KEY = issue_key().raw
GLOBEX_KEY = issue_key().raw
MAX_BODY_BYTES = 2048


@pytest.fixture
def services() -> FakeInternalServices:
    return FakeInternalServices()


@pytest.fixture
def keys() -> FakeKeyStore:
    return FakeKeyStore({ACME_KEY: "acme", GLOBEX_KEY: "globex"})


@pytest.fixture
async def app(services: FakeInternalServices, keys: FakeKeyStore) -> AsyncIterator[FastAPI]:
    settings = GatewaySettings(
        max_body_bytes=MAX_BODY_BYTES, internal_auth_private_key=generate_keypair()[0]
    )
    app = create_app(settings, keys=keys, services=services)
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
