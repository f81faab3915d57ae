"""The agent against real PostgreSQL and moto server (S3, EventBridge, SQS)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent.app import MIGRATIONS, build_service
from agent.artifacts import S3StagingArea
from agent.providers.base import ModelProvider, ModelReply, ModelRequest
from agent.providers.scripted import ScriptedProvider
from agent.repository import PostgresRuns
from agent.service import AgentService
from agent.settings import AgentSettings
from relay.stack.topology import Topology
from relay_shared.aws import aws_client
from relay_shared.db import Database
from relay_shared.migrations import KIT_INBOX, KIT_OUTBOX
from relay_shared.runtime import migrate


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
        return build_service(
            self.settings,
            runs=PostgresRuns(self.database),
            staging=S3StagingArea(self.s3, self.settings.artifacts_bucket),
            provider=provider,
        )

    async def outbox(self) -> list[dict[str, Any]]:
        async with self.database.transaction() as conn:
            cur = await conn.execute("SELECT detail_type, detail FROM outbox ORDER BY id")
            return list(await cur.fetchall())

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
