"""Bedrock and Vertex: the SDK's own AsyncAnthropicBedrock and AsyncAnthropicVertex, through
our provider, against fakes of their wire formats (event-stream frames; rawPredict SSE)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from agent.ports import ModelProvider
from agent.providers import open_provider
from agent.providers.base import ProviderError
from agent.settings import AgentSettings
from relay_devkit.fakes import (
    ApiError,
    FakeBedrockApi,
    FakeModelApi,
    FakeVertexApi,
    Reply,
    Text,
    TokenUsage,
    ToolUse,
    Turn,
)
from relay_shared.events import Usage

from .conftest import SDK_DEPRECATION_IS_NOT_OURS, WRITE_FILE, Served, model_request, tool_results

pytestmark = [pytest.mark.integration, SDK_DEPRECATION_IS_NOT_OURS]

NOTE = {"path": "notes/plan.md", "content": 'Step 1: {"a": [1, 2]}\nStep 2: done'}


@asynccontextmanager
async def bedrock(served: Served[FakeBedrockApi]) -> AsyncIterator[ModelProvider]:
    settings = AgentSettings(
        llm_provider="bedrock", bedrock_region="eu-west-1", bedrock_base_url=served.url
    )
    async with open_provider(settings) as provider:
        yield provider


@asynccontextmanager
async def vertex(served: Served[FakeVertexApi]) -> AsyncIterator[ModelProvider]:
    settings = AgentSettings(
        llm_provider="vertex",
        vertex_project_id="relay-test",
        vertex_region="europe-west1",
        vertex_base_url=f"{served.url}/v1",
        vertex_access_token="ya29.test-token",
    )
    async with open_provider(settings) as provider:
        yield provider


async def _round_trip(provider: ModelProvider, fake: FakeModelApi) -> None:
    fake.script(
        Reply([Text("Planning."), ToolUse("write_file", NOTE)], TokenUsage(80, 30, 20, 10)),
        Reply([Text("Done.")], TokenUsage(120, 5)),
    )
    first = await provider.complete(model_request())
    second = await provider.complete(model_request(history=tool_results(first)))
    assert [(t.name, t.input) for t in first.tool_uses] == [("write_file", NOTE)]
    assert first.usage == Usage(
        input_tokens=80,
        output_tokens=30,
        cache_creation_input_tokens=20,
        cache_read_input_tokens=10,
    )
    assert (second.text, second.stop_reason) == ("Done.", "end_turn")
    for call in fake.calls:
        assert call.streamed
        # the model travels in the path; the body is the Messages API request with a version
        assert "model" not in call.body
        assert call.body["anthropic_version"]
        assert call.body["tools"] == [WRITE_FILE.model_dump()]
    assert fake.calls[1].body["messages"][1]["content"][1]["input"] == NOTE


@pytest.mark.usefixtures("aws_credentials")
async def test_bedrock_streamed_round_trip(bedrock_api: Served[FakeBedrockApi]) -> None:
    async with bedrock(bedrock_api) as provider:
        await _round_trip(provider, bedrock_api.fake)
    call = bedrock_api.fake.calls[0]
    assert call.path == (
        "/model/anthropic.claude-sonnet-4-5-20250929-v1:0/invoke-with-response-stream"
    )
    # SigV4-signed for Bedrock in the configured region (the fake does not verify signatures)
    authorization = call.headers["authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=testing/")
    assert "/eu-west-1/bedrock/aws4_request" in authorization
    assert "x-amz-date" in call.headers


@pytest.mark.usefixtures("aws_credentials")
async def test_bedrock_signs_with_its_own_profile_over_the_environment(
    bedrock_api: Served[FakeBedrockApi], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # locally the stack points AWS_ACCESS_KEY_ID at moto; Bedrock gets real keys by profile
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "[bedrock-dev]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = profile-secret\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    settings = AgentSettings(
        llm_provider="bedrock",
        bedrock_region="eu-west-1",
        bedrock_base_url=bedrock_api.url,
        bedrock_aws_profile="bedrock-dev",
    )
    bedrock_api.fake.script(Reply())
    async with open_provider(settings) as provider:
        await provider.complete(model_request())
    assert "Credential=AKIDPROFILE/" in bedrock_api.fake.calls[0].headers["authorization"]


@pytest.mark.usefixtures("aws_credentials")
@pytest.mark.parametrize(
    ("turn", "code", "retry_after"),
    [
        (ApiError.rate_limited(retry_after=3), "rate_limited", 3.0),  # 429 ThrottlingException
        (ApiError(429, "rate_limit_error", "slow down", after_events=2), "rate_limited", None),
        (ApiError(403, "permission_error", "no access to model"), "provider_auth_failed", None),
    ],
)
async def test_bedrock_errors(
    bedrock_api: Served[FakeBedrockApi], turn: Turn, code: str, retry_after: float | None
) -> None:
    bedrock_api.fake.script(turn)
    async with bedrock(bedrock_api) as provider:
        with pytest.raises(ProviderError) as caught:
            await provider.complete(model_request())
    assert (caught.value.code, caught.value.retry_after) == (code, retry_after)


async def test_vertex_streamed_round_trip(vertex_api: Served[FakeVertexApi]) -> None:
    async with vertex(vertex_api) as provider:
        await _round_trip(provider, vertex_api.fake)
    call = vertex_api.fake.calls[0]
    assert call.path == (
        "/v1/projects/relay-test/locations/europe-west1/publishers/anthropic/models/"
        "claude-sonnet-4-5@20250929:streamRawPredict"
    )
    assert call.credential == "ya29.test-token"


@pytest.mark.parametrize(
    ("turn", "code", "retryable"),
    [
        (ApiError.rate_limited(), "rate_limited", True),  # Google's RESOURCE_EXHAUSTED
        (ApiError.overloaded(), "overloaded", True),  # the model's own, in Anthropic's format
        (ApiError.unauthorized(), "provider_auth_failed", False),
    ],
)
async def test_vertex_errors(
    vertex_api: Served[FakeVertexApi], turn: Turn, code: str, retryable: bool
) -> None:
    vertex_api.fake.script(turn)
    async with vertex(vertex_api) as provider:
        with pytest.raises(ProviderError) as caught:
            await provider.complete(model_request())
    assert (caught.value.code, caught.value.retryable) == (code, retryable)


async def test_an_unmapped_model_never_reaches_the_provider(
    vertex_api: Served[FakeVertexApi],
) -> None:
    request: Any = model_request().model_copy(update={"model": "claude-2"})
    async with vertex(vertex_api) as provider:
        with pytest.raises(ProviderError) as caught:
            await provider.complete(request)
    assert (caught.value.code, caught.value.retryable) == ("model_not_found", False)
    assert vertex_api.fake.calls == []
