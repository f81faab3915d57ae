"""The end-to-end suite runs the real `relay up` (five services, moto server, PostgreSQL, Redis)
on free ports with a fresh database, and talks to it only through the public API."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from relay_devkit.api_client import PublicApi
from relay_ops.stack.process import RunningStack, running_stack


@pytest.fixture(scope="session")
def stack(
    database_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    aws_credentials: None,  # the tests' own boto3 clients (fault injection) talk to moto
) -> Iterator[RunningStack]:
    """The stack with the scripted model (no provider credentials configured). Metrics are
    exported every 2 s (test_human_input reads the agent's), and expired waits for input are
    failed within a second."""
    with running_stack(
        database_url,
        redis_url,
        tmp_path_factory.mktemp("relay-stack"),
        RELAY_METRICS_INTERVAL_SECONDS="2",
        RELAY_WAIT_EXPIRY_INTERVAL_SECONDS="1",
    ) as up:
        yield up


@pytest.fixture(scope="session")
def tenant() -> str:
    return f"acme-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
def api_key(stack: RunningStack, tenant: str) -> str:
    return stack.create_key(tenant)


@pytest.fixture(scope="session")
def other_api_key(stack: RunningStack) -> str:
    return stack.create_key(f"globex-{uuid.uuid4().hex[:6]}")


@pytest.fixture
async def api(stack: RunningStack, api_key: str) -> AsyncIterator[PublicApi]:
    client = PublicApi(stack.gateway_url, api_key)
    yield client
    await client.aclose()


@pytest.fixture
async def other_api(stack: RunningStack, other_api_key: str) -> AsyncIterator[PublicApi]:
    client = PublicApi(stack.gateway_url, other_api_key)
    yield client
    await client.aclose()


@pytest.fixture
async def anonymous(stack: RunningStack) -> AsyncIterator[PublicApi]:
    client = PublicApi(stack.gateway_url, None)
    yield client
    await client.aclose()
