"""Unit-test fixtures: the tasks service built through its composition root on the in-memory
fakes (fakes.py), as an app or as its use cases alone (no I/O)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from asgi_lifespan import LifespanManager

from relay_devkit.testing import wait_ready
from relay_shared.composition import given
from relay_shared.internal_auth import TokenIssuer
from tasks.app import build, create_app
from tasks.service import TaskService
from tasks.settings import TasksSettings

from .fakes import Fakes, InMemoryTaskStore


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


@pytest.fixture
def store(fakes: Fakes) -> InMemoryTaskStore:
    """The fake store the service runs on, for a test to look into or arrange."""
    return fakes.store


@pytest.fixture
def settings(internal_keys: tuple[str, str]) -> TasksSettings:
    return TasksSettings(
        internal_auth_public_key=internal_keys[1],
        default_model="claude-sonnet-4-5",
        max_prompt_chars=1000,
        idempotency_ttl_hours=24,
    )


Headers = Callable[[str], dict[str, str]]


@pytest.fixture
def auth(internal_keys: tuple[str, str]) -> Headers:
    """Headers of a gateway call for ``tenant``."""
    issuer = TokenIssuer(internal_keys[0])
    return lambda tenant: issuer.headers(audience="tasks", tenant_id=tenant)


@pytest.fixture
def service(settings: TasksSettings, fakes: Fakes) -> TaskService:
    """The use cases on the fakes, without HTTP (the same store as the app's)."""
    return build(settings, fakes.ports())


OpenClient = Callable[[TasksSettings], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def open_client(fakes: Fakes) -> OpenClient:
    """Start the app on the fakes with the given settings; yields an HTTP client for it."""

    @asynccontextmanager
    async def open_(settings: TasksSettings) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(settings, ports=given(fakes.ports()))
        async with (
            LifespanManager(app) as manager,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=manager.app), base_url="http://tasks"
            ) as http,
        ):
            await wait_ready(app)
            yield http

    return open_


@pytest.fixture
async def client(
    settings: TasksSettings, open_client: OpenClient
) -> AsyncIterator[httpx.AsyncClient]:
    async with open_client(settings) as http:
        yield http
