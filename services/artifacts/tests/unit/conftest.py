"""The artifacts service built through its composition root on the in-memory fakes (fakes.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from artifacts.app import build, create_app
from artifacts.service import ArtifactService
from artifacts.settings import ArtifactsSettings
from relay_devkit.testing import wait_ready
from relay_shared.composition import given
from relay_shared.internal_auth import TokenIssuer, generate_keypair

from .fakes import Fakes

PRIVATE_KEY, PUBLIC_KEY = generate_keypair()
ISSUER = TokenIssuer(PRIVATE_KEY)
SETTINGS = ArtifactsSettings(
    internal_auth_public_key=PUBLIC_KEY,
    artifacts_bucket="relay-local-artifacts",  # where the upload_event fixture stages by default
    download_url_ttl_seconds=120,
)


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


@pytest.fixture
def service(fakes: Fakes) -> ArtifactService:
    """The use cases on the fakes, without HTTP."""
    return build(SETTINGS, fakes.ports())


@pytest.fixture
def app(fakes: Fakes) -> FastAPI:
    """The whole app on the fakes (``client`` starts it)."""
    return create_app(SETTINGS, ports=given(fakes.ports()))


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP to the started app; it stops after the test."""
    async with LifespanManager(app) as manager:
        await wait_ready(app)
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://artifacts") as client:
            yield client
