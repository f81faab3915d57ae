"""Opening each provider: resolve its credentials, build the SDK client, close it on exit.

All three SDK clients get the same deadlines (connect, idle between stream chunks) and
``max_retries=0``: the agent loop owns retries, within the task's budgets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import httpx2
from anthropic import AsyncAnthropic, AsyncAnthropicBedrock, AsyncAnthropicVertex

from agent.providers.claude import ClaudeProvider, MessagesClient
from agent.providers.credentials import (
    NO_ANTHROPIC_KEY,
    NO_VERTEX_PLACE,
    ProviderConfigError,
    anthropic_api_key,
    google_credentials,
    require_aws_credentials,
)
from agent.providers.model_ids import ModelIds
from agent.providers.scripted import ScriptedProvider

if TYPE_CHECKING:
    from agent.ports import ModelProvider
    from agent.settings import AgentSettings

log = logging.getLogger(__name__)


def sdk_timeout(settings: AgentSettings) -> httpx2.Timeout:
    """httpx's read timeout is the gap allowed between two chunks of a stream (idle); the
    total per call is ClaudeProvider's own deadline."""
    return httpx2.Timeout(
        settings.provider_call_timeout,
        connect=settings.provider_connect_timeout,
        read=settings.provider_idle_timeout,
        write=settings.provider_idle_timeout,
        pool=settings.provider_connect_timeout,
    )


def missing_settings(settings: AgentSettings) -> str | None:
    """What the configured provider lacks, checked without I/O when the app is built."""
    if settings.llm_provider == "anthropic" and not (
        settings.anthropic_api_key or settings.anthropic_api_key_secret_id
    ):
        return NO_ANTHROPIC_KEY
    if settings.llm_provider == "vertex" and not (
        settings.vertex_project_id and settings.vertex_region
    ):
        return NO_VERTEX_PLACE
    return None


@asynccontextmanager
async def _claude(settings: AgentSettings, client: MessagesClient) -> AsyncIterator[ModelProvider]:
    model_ids = ModelIds.for_provider(settings.llm_provider, settings.model_ids)
    async with client:
        yield ClaudeProvider(client, model_ids, call_timeout=settings.provider_call_timeout)


@asynccontextmanager
async def open_anthropic(settings: AgentSettings) -> AsyncIterator[ModelProvider]:
    client = AsyncAnthropic(
        api_key=await anthropic_api_key(settings),
        base_url=settings.anthropic_base_url,
        timeout=sdk_timeout(settings),
        max_retries=0,
    )
    async with _claude(settings, client) as provider, _following_the_key(settings, client):
        yield provider


@asynccontextmanager
async def _following_the_key(
    settings: AgentSettings, client: AsyncAnthropic
) -> AsyncIterator[None]:
    """With the key in Secrets Manager, re-read it every
    RELAY_ANTHROPIC_API_KEY_REFRESH_SECONDS: after a rotation the SDK client sends the new key
    from its next request on (it reads ``api_key`` for each one). A failed read keeps the key in
    use. Rotate by making the new key, putting it in the secret, and revoking the old one at
    Anthropic once a refresh has passed (docs/operations.md)."""
    if not settings.anthropic_api_key_secret_id:
        yield
        return

    async def follow() -> None:
        while True:
            await asyncio.sleep(settings.anthropic_api_key_refresh_seconds)
            try:
                key = await anthropic_api_key(settings)
            except ProviderConfigError as exc:  # unreadable now, or unreachable
                log.warning("anthropic: keeping the API key in use: %s", exc)
                continue
            if key != client.api_key:
                client.api_key = key
                log.info(
                    "anthropic: using the rotated API key from %s",
                    settings.anthropic_api_key_secret_id,
                )

    task = asyncio.create_task(follow(), name="anthropic api key refresh")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@asynccontextmanager
async def open_bedrock(settings: AgentSettings) -> AsyncIterator[ModelProvider]:
    region = settings.bedrock_region or settings.aws_region
    profile = settings.bedrock_aws_profile
    await require_aws_credentials(region, profile=profile)
    client = AsyncAnthropicBedrock(
        aws_region=region,
        aws_profile=profile,
        base_url=settings.bedrock_base_url,
        timeout=sdk_timeout(settings),
        max_retries=0,
    )
    async with _claude(settings, client) as provider:
        yield provider


@asynccontextmanager
async def open_vertex(settings: AgentSettings) -> AsyncIterator[ModelProvider]:
    if not (settings.vertex_project_id and settings.vertex_region):
        raise ProviderConfigError(NO_VERTEX_PLACE)
    token = settings.vertex_access_token
    client = AsyncAnthropicVertex(
        project_id=settings.vertex_project_id,
        region=settings.vertex_region,
        access_token=token.get_secret_value() if token else None,
        credentials=None if token else await google_credentials(),
        base_url=settings.vertex_base_url,
        timeout=sdk_timeout(settings),
        max_retries=0,
    )
    async with _claude(settings, client) as provider:
        yield provider


@asynccontextmanager
async def open_scripted(_settings: AgentSettings) -> AsyncIterator[ModelProvider]:
    yield ScriptedProvider()
