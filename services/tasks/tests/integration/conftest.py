"""Integration fixtures: the real tasks app on PostgreSQL and moto server, and a direct
connection to its schema for checking what it stored."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from psycopg.rows import dict_row

from relay_devkit.testing import wait_ready
from relay_ops.stack.topology import Topology
from relay_shared.db import schema_conninfo
from relay_shared.internal_auth import TokenIssuer
from tasks.app import create_app
from tasks.settings import TasksSettings


@pytest.fixture
def settings(
    database_url: str,
    db_schema: str,
    topology: Topology,
    moto_endpoint: str,
    internal_keys: tuple[str, str],
) -> TasksSettings:
    return TasksSettings(
        env=topology.env,
        database_url=database_url,
        db_schema=db_schema,
        aws_endpoint_url=moto_endpoint,
        internal_auth_public_key=internal_keys[1],
        consumer_wait_seconds=1,
        shutdown_grace_seconds=5,
        # roomy enough that a prompt can outgrow one event (the outbox's limit, not ours)
        max_prompt_chars=300_000,
    )


@dataclass
class RunningTasks:
    app: FastAPI
    http: httpx.AsyncClient


@pytest.fixture
async def tasks(settings: TasksSettings) -> AsyncIterator[RunningTasks]:
    """The whole service: migrations, HTTP routes, outbox relay and SQS consumer."""
    app = create_app(settings)
    async with (
        LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://tasks"
        ) as http,
    ):
        await wait_ready(app)
        yield RunningTasks(app, http)


@pytest.fixture
def tenant() -> str:
    return f"tenant-{uuid.uuid4().hex[:8]}"


Headers = Callable[[str], dict[str, str]]


@pytest.fixture
def auth(internal_keys: tuple[str, str]) -> Headers:
    issuer = TokenIssuer(internal_keys[0])
    return lambda tenant: issuer.headers(audience="tasks", tenant_id=tenant)


@pytest.fixture
async def db(database_url: str, db_schema: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A connection of the test's own to the service schema (autocommit)."""
    conn = await psycopg.AsyncConnection.connect(
        schema_conninfo(database_url, db_schema), autocommit=True, row_factory=dict_row
    )
    try:
        yield conn
    finally:
        await conn.close()
