"""The notifier built through its composition root on the in-memory fakes (fakes.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from notifier.app import build, create_app
from notifier.service import Notifier
from notifier.settings import NotifierSettings
from relay_devkit.testing import wait_ready
from relay_shared.composition import given
from relay_shared.internal_auth import TokenIssuer, generate_keypair

from .fakes import Fakes

HOLD_SECONDS = 30.0
PRIVATE_KEY, PUBLIC_KEY = generate_keypair()
ISSUER = TokenIssuer(PRIVATE_KEY)


def unit_settings(**overrides: Any) -> NotifierSettings:
    values: dict[str, Any] = {
        "internal_auth_public_key": PUBLIC_KEY,
        "timeline_hold_seconds": HOLD_SECONDS,
        **overrides,
    }
    return NotifierSettings(**values)


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


@pytest.fixture
def notifier(fakes: Fakes) -> Notifier:
    """The use cases on the fakes, without HTTP."""
    return build(unit_settings(), fakes.ports())


@pytest.fixture
def app(fakes: Fakes) -> FastAPI:
    """The whole app on the fakes (``client`` starts it)."""
    return create_app(unit_settings(sse_heartbeat_seconds=60), ports=given(fakes.ports()))


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP to the started app; it stops after the test."""
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://notifier"
        ) as http,
    ):
        await wait_ready(app)
        yield http
