"""The agent against real PostgreSQL and moto server (S3, EventBridge, SQS)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from agent.app import MIGRATIONS, build, create_app, open_ports
from agent.artifacts import S3StagingArea
from agent.cancel_listener import CancelListener
from agent.ports import ModelProvider, Ports
from agent.providers.base import ModelReply, ModelRequest
from agent.providers.scripted import ScriptedProvider
from agent.repository import PostgresRuns
from agent.service import AgentService
from agent.settings import AgentSettings
from agent.tools import TOOLS, Tool
from relay_devkit.testing import wait_ready
from relay_ops.stack.topology import Topology
from relay_shared.aws import aws_client
from relay_shared.composition import OpenPorts
from relay_shared.db import Database
from relay_shared.events import DomainEvent
from relay_shared.migrations import KIT_INBOX, KIT_OUTBOX, migrate
from relay_shared.outbox import to_outbound
from relay_shared.publisher import EventBridgePublisher
from relay_shared.runtime import ServiceRuntime

from ..unit.fakes import BlockedProvider  # noqa: TID252 -- the agent's fakes have one home

L = TypeVar("L")


def swapping(**swapped: Any) -> OpenPorts[AgentSettings, Ports]:
    """``open_ports`` with some of the production ports swapped (the provider, the tools)."""

    async def ports(settings: AgentSettings, runtime: ServiceRuntime) -> Ports:
        return dataclasses.replace(await open_ports(settings, runtime), **swapped)

    return ports


def loop_of(app: FastAPI, kind: type[L]) -> L:
    """The running app's background loop of this kind (from ``app.state.loops``)."""
    [found] = [loop for loop in app.state.loops if isinstance(loop, kind)]
    return found


class CountingProvider:
    """The real scripted provider, counting calls; ``fail_on_call`` raises a bug once."""

    def __init__(self, inner: ModelProvider | None = None, *, fail_on_call: int = 0) -> None:
        self._inner = inner or ScriptedProvider()
        self._fail_on_call = fail_on_call
        self.calls = 0

    async def complete(self, request: ModelRequest) -> ModelReply:
        self.calls += 1
        if self.calls == self._fail_on_call:
            raise RuntimeError("worker bug")
        return await self._inner.complete(request)


@dataclass
class Runtime:
    settings: AgentSettings
    database: Database
    s3: Any

    def service(self, provider: ModelProvider) -> AgentService:
        """The use cases on the production adapters (no loops: the test drives them)."""
        ports = Ports(
            runs=PostgresRuns(self.database),
            staging=S3StagingArea(self.s3, self.settings.artifacts_bucket),
            provider=provider,
        )
        return build(self.settings, ports)

    async def outbox(self) -> list[dict[str, Any]]:
        async with self.database.transaction() as conn:
            cur = await conn.execute("SELECT detail_type, detail FROM outbox ORDER BY id")
            return list(await cur.fetchall())

    async def emitted(self) -> list[str]:
        return [row["detail_type"] for row in await self.outbox()]

    async def execute(self, query: str, *params: Any) -> None:
        async with self.database.transaction() as conn:
            await conn.execute(query, params)

    async def run_row(self, task_id: object) -> dict[str, Any] | None:
        async with self.database.transaction() as conn:
            cur = await conn.execute("SELECT * FROM runs WHERE task_id = %s", (task_id,))
            row: dict[str, Any] | None = await cur.fetchone()
            return row


@pytest.fixture
def agent_settings(
    database_url: str, db_schema: str, topology: Topology, moto_endpoint: str, tmp_path: Path
) -> AgentSettings:
    return AgentSettings(
        env=topology.env,
        database_url=database_url,
        db_schema=db_schema,
        aws_endpoint_url=moto_endpoint,
        consumer_wait_seconds=1,
        outbox_poll_interval=0.5,
        shutdown_grace_seconds=5,
        worker_id="it-worker",
        workspace_root=tmp_path / "workspaces",
    )


@pytest.fixture
async def runtime(agent_settings: AgentSettings) -> AsyncIterator[Runtime]:
    await migrate(agent_settings, KIT_OUTBOX, KIT_INBOX, MIGRATIONS)
    database = Database(agent_settings.database_url.get_secret_value(), agent_settings.db_schema)
    await database.open()
    try:
        async with aws_client(agent_settings, "s3") as s3:
            yield Runtime(agent_settings, database, s3)
    finally:
        await database.close()


@pytest.fixture
def counting() -> type[CountingProvider]:
    return CountingProvider


@pytest.fixture
def blocked() -> type[BlockedProvider]:
    return BlockedProvider


Serving = Callable[..., AbstractAsyncContextManager[FastAPI]]


@pytest.fixture
def serving(runtime: Runtime) -> Serving:
    """A whole agent process in this event loop (consumers, cancel listener, outbox relay),
    on the test's database and queues; ``worker_id`` and other settings per instance."""

    @asynccontextmanager
    async def serve(
        provider: ModelProvider | None = None,
        *,
        tools: Mapping[str, Tool] = TOOLS,
        **overrides: Any,
    ) -> AsyncIterator[FastAPI]:
        settings = runtime.settings.model_copy(update=overrides)
        swapped = {"tools": tools} if provider is None else {"tools": tools, "provider": provider}
        app = create_app(settings, ports=swapping(**swapped))
        async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
            await wait_ready(app)
            await asyncio.wait_for(loop_of(app, CancelListener).listening.wait(), 30)
            yield app

    return serve


@pytest.fixture
def publish(agent_settings: AgentSettings) -> Callable[..., Any]:
    """Put events on the bus, as their producer's outbox relay would."""

    async def put(*events: DomainEvent) -> None:
        async with aws_client(agent_settings, "events") as client:
            outcome = await EventBridgePublisher(client, agent_settings.event_bus_name).publish(
                [to_outbound(e) for e in events]
            )
        assert outcome.failed == {}

    return put


@pytest.fixture
def queue_depth(agent_settings: AgentSettings, topology: Topology) -> Callable[..., Any]:
    """(visible, held back) messages on one of the agent's queues; held back is in flight or
    delayed (a deferred message is sent again with a delay)."""

    async def depth(queue: str = "agent") -> tuple[int, int]:
        async with aws_client(agent_settings, "sqs") as sqs:
            response = await sqs.get_queue_attributes(
                QueueUrl=topology.queue_urls[queue],
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )
        attributes = response["Attributes"]
        return (
            int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"])
            + int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
        )

    return depth


def eventbridge_body(event: DomainEvent) -> str:
    """An event as an SQS target of the bus receives it (to deliver it a second time)."""
    outbound = to_outbound(event)
    return json.dumps(
        {
            "version": "0",
            "id": outbound.event_id,
            "detail-type": outbound.detail_type,
            "source": outbound.source,
            "detail": json.loads(outbound.detail),
        }
    )
