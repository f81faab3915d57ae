"""The real SDK clients, through our provider, against fake model endpoints on real sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import pytest

from agent.ports import ModelProvider
from agent.providers import open_provider
from agent.providers.base import ModelReply, ModelRequest, ToolSpec
from agent.settings import AgentSettings
from relay_devkit.fakes import FakeAnthropicApi, FakeBedrockApi, FakeModelApi, FakeVertexApi
from relay_devkit.testing import serve_app

F = TypeVar("F", bound=FakeModelApi)

# The SDK warns when a model name is near its end of life; the tests use today's names.
SDK_DEPRECATION_IS_NOT_OURS = pytest.mark.filterwarnings(
    "ignore:The model .* is deprecated:DeprecationWarning"
)

WRITE_FILE = ToolSpec(
    name="write_file",
    description="Write a file in the task's workspace.",
    input_schema={
        "type": "object",
        "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
        "required": ["path", "content"],
    },
)


@dataclass
class Served(Generic[F]):
    fake: F
    url: str


def model_request(
    prompt: str = "Write a haiku to haiku.md", *, history: list[dict[str, Any]] | None = None
) -> ModelRequest:
    return ModelRequest(
        model="claude-sonnet-4-5",
        system="You are Relay's agent.",
        messages=[{"role": "user", "content": prompt}, *(history or [])],
        tools=[WRITE_FILE],
        max_tokens=1024,
    )


def tool_results(reply: ModelReply) -> list[dict[str, Any]]:
    """The next turns of a conversation after ``reply``: it, then a result per tool call."""
    results = [
        {"type": "tool_result", "tool_use_id": call.id, "content": "ok"} for call in reply.tool_uses
    ]
    return [reply.as_message(), {"role": "user", "content": results}]


@pytest.fixture
async def anthropic_api() -> AsyncIterator[Served[FakeAnthropicApi]]:
    fake = FakeAnthropicApi()
    async with serve_app(fake.app) as url:
        yield Served(fake, url)


@pytest.fixture
async def bedrock_api() -> AsyncIterator[Served[FakeBedrockApi]]:
    fake = FakeBedrockApi()
    async with serve_app(fake.app) as url:
        yield Served(fake, url)


@pytest.fixture
async def vertex_api() -> AsyncIterator[Served[FakeVertexApi]]:
    fake = FakeVertexApi()
    async with serve_app(fake.app) as url:
        yield Served(fake, url)


OpenProvider = Callable[..., AbstractAsyncContextManager[ModelProvider]]


@pytest.fixture
def anthropic_provider(anthropic_api: Served[FakeAnthropicApi]) -> OpenProvider:
    """``async with anthropic_provider(**settings) as provider``: the anthropic provider on the
    fake, with a key from the environment unless the settings say otherwise."""

    def open_(**overrides: Any) -> AbstractAsyncContextManager[ModelProvider]:
        values: dict[str, Any] = {
            "llm_provider": "anthropic",
            "anthropic_api_key": "sk-ant-test-key",
            "anthropic_base_url": anthropic_api.url,
            **overrides,
        }
        return open_provider(AgentSettings(**values))

    return open_
