"""Real PostgreSQL, Redis and moto server for the notifier, served over real HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from httpx_sse import aconnect_sse
from redis.asyncio import Redis

from notifier.app import create_app
from notifier.handlers import dispatcher
from notifier.live import RedisLiveFeed, timeline_channel
from notifier.ports import Ports
from notifier.service import Notifier
from notifier.settings import NotifierSettings
from relay_devkit.testing import serve_app
from relay_ops.stack.topology import Topology
from relay_shared.db import schema_conninfo
from relay_shared.events import DomainEvent
from relay_shared.internal_auth import TokenIssuer


@dataclass
class Replica:
    """One running notifier process-equivalent: its settings, app, URL and built service."""

    settings: NotifierSettings
    app: FastAPI
    url: str

    @property
    def notifier(self) -> Notifier:
        notifier: Notifier = self.app.state.service
        return notifier

    @property
    def env(self) -> str:
        return self.settings.env

    async def dispatch(self, event: DomainEvent) -> None:
        """Hand ``event`` to the handlers, as the SQS consumer does."""
        await dispatcher(self.notifier).dispatch(event)

    def listening(self, task_id: UUID) -> int:
        ports: Ports = self.app.state.ports
        assert isinstance(ports.feed, RedisLiveFeed)
        return ports.feed.listening(task_id)


@dataclass
class Harness:
    settings: Callable[..., NotifierSettings]
    issuer: TokenIssuer
    database_url: str
    schema: str
    redis: Redis

    @asynccontextmanager
    async def replica(self, **overrides: Any) -> AsyncIterator[Replica]:
        settings = self.settings(**overrides)
        app = create_app(settings)
        async with serve_app(app) as url:
            yield Replica(settings, app, url)

    def headers(self, tenant: str = "acme", **extra: str) -> dict[str, str]:
        return {**self.issuer.headers(audience="notifier", tenant_id=tenant), **extra}

    async def subscribers(self, env: str, task_id: UUID) -> int:
        """Redis-side subscriber count of the task's channel (all replicas)."""
        counts = await self.redis.pubsub_numsub(timeline_channel(env, task_id))
        return int(counts[0][1])

    async def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        conninfo = schema_conninfo(self.database_url, self.schema)
        async with await psycopg.AsyncConnection.connect(conninfo) as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchall()


@pytest.fixture
async def harness(
    database_url: str,
    db_schema: str,
    topology: Topology,
    moto_endpoint: str,
    redis_url: str,
    internal_keys: tuple[str, str],
) -> AsyncIterator[Harness]:
    def settings(**overrides: Any) -> NotifierSettings:
        values: dict[str, Any] = {
            "env": topology.env,
            "database_url": database_url,
            "db_schema": db_schema,
            "db_pool_max": 4,
            "aws_endpoint_url": moto_endpoint,
            "redis_url": redis_url,
            "internal_auth_public_key": internal_keys[1],
            "consumer_wait_seconds": 1,
            "shutdown_grace_seconds": 5,
            **overrides,
        }
        return NotifierSettings(**values)

    redis = Redis.from_url(redis_url)
    try:
        yield Harness(settings, TokenIssuer(internal_keys[0]), database_url, db_schema, redis)
    finally:
        await redis.aclose()


async def read_stream(
    url: str, task_id: UUID, headers: dict[str, str], *, params: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Every SSE event until the server ends the stream: id, event and parsed data."""
    received = []
    async with (
        httpx.AsyncClient(base_url=url, timeout=20) as client,
        aconnect_sse(
            client, "GET", f"/internal/tasks/{task_id}/events", headers=headers, params=params
        ) as source,
    ):
        source.response.raise_for_status()
        async for sse in source.aiter_sse():
            received.append({"id": sse.id, "event": sse.event, "data": json.loads(sse.data)})
    return received
