"""The anthropic provider: the official SDK's AsyncAnthropic, streaming, against a fake of the
Messages API on a real socket."""

from __future__ import annotations

import asyncio
import time

import pytest

from agent.providers import open_provider
from agent.providers.base import ProviderError, TextBlock, ToolUseBlock
from agent.settings import AgentSettings
from relay_devkit.fakes import (
    ApiError,
    FakeAnthropicApi,
    Reply,
    Text,
    TokenUsage,
    ToolUse,
    Turn,
    writes_file,
)
from relay_devkit.testing import eventually
from relay_ops.stack.moto import free_port
from relay_shared.events import Usage

from .conftest import (
    SDK_DEPRECATION_IS_NOT_OURS,
    WRITE_FILE,
    OpenProvider,
    Served,
    model_request,
    tool_results,
)

pytestmark = [pytest.mark.integration, SDK_DEPRECATION_IS_NOT_OURS]

# JSON that only survives if the client joins the partial_json pieces in order
HAIKU = {"path": "haiku.md", "content": 'An old silent pond\n{"frog": [1, 2]}\n— Bashō'}


async def test_streamed_tool_use_round_trip(
    anthropic_api: Served[FakeAnthropicApi], anthropic_provider: OpenProvider
) -> None:
    fake = anthropic_api.fake
    fake.script(
        Reply([Text("I'll write it."), ToolUse("write_file", HAIKU)], TokenUsage(120, 40, 30, 7)),
        Reply([Text("Wrote haiku.md.")], TokenUsage(200, 10, 0, 150)),
    )
    async with anthropic_provider() as provider:
        first = await provider.complete(model_request())
        second = await provider.complete(model_request(history=tool_results(first)))

    assert first.stop_reason == "tool_use"
    assert first.content[0] == TextBlock(text="I'll write it.")
    assert first.tool_uses == [
        ToolUseBlock(id=first.tool_uses[0].id, name="write_file", input=HAIKU)
    ]
    assert (second.text, second.stop_reason) == ("Wrote haiku.md.", "end_turn")

    # what went over the wire: a streamed Messages API request with our key
    request, follow_up = fake.calls
    assert request.streamed
    assert request.path == "/v1/messages"
    assert request.credential == "sk-ant-test-key"
    assert "anthropic-version" in request.headers
    assert request.body["model"] == "claude-sonnet-4-5"
    assert request.body["system"] == "You are Relay's agent."
    assert request.body["tools"] == [WRITE_FILE.model_dump()]
    assert request.body["max_tokens"] == 1024
    # the tool call went back as the assistant turn, its result as the next user turn
    assistant, results = follow_up.body["messages"][1:]
    assert assistant["content"][1] == {
        "type": "tool_use",
        "id": first.tool_uses[0].id,
        "name": "write_file",
        "input": HAIKU,
    }
    assert results["content"][0]["tool_use_id"] == first.tool_uses[0].id


async def test_usage_counts_cache_tokens_and_sums_to_what_the_api_reported(
    anthropic_api: Served[FakeAnthropicApi], anthropic_provider: OpenProvider
) -> None:
    anthropic_api.fake.answer_with(writes_file("notes.md", "hello", usage=TokenUsage(50, 9, 4, 3)))
    async with anthropic_provider() as provider:
        first = await provider.complete(model_request())
        second = await provider.complete(model_request(history=tool_results(first)))

    assert first.tool_uses[0].input == {"path": "notes.md", "content": "hello"}
    assert first.usage == Usage(
        input_tokens=50, output_tokens=9, cache_creation_input_tokens=4, cache_read_input_tokens=3
    )
    reported = anthropic_api.fake.reported_usage()
    assert first.usage + second.usage == Usage(**reported.as_json())


@pytest.mark.parametrize(
    ("turn", "code", "retryable", "retry_after"),
    [
        pytest.param(ApiError.rate_limited(retry_after=2.5), "rate_limited", True, 2.5, id="429"),
        pytest.param(ApiError.overloaded(), "overloaded", True, None, id="529"),
        pytest.param(ApiError.server_error(), "provider_unavailable", True, None, id="500"),
        pytest.param(
            ApiError(503, "api_error", "unavailable"), "provider_unavailable", True, None, id="503"
        ),
        pytest.param(ApiError.unauthorized(), "provider_auth_failed", False, None, id="401"),
        pytest.param(
            ApiError(403, "permission_error", "no"), "provider_auth_failed", False, None, id="403"
        ),
        pytest.param(ApiError.invalid_request(), "invalid_request", False, None, id="400"),
        pytest.param(
            ApiError(413, "request_too_large", "big"), "invalid_request", False, None, id="413"
        ),
        pytest.param(ApiError.not_found(), "model_not_found", False, None, id="404"),
        pytest.param(
            ApiError(529, "overloaded_error", "Overloaded", after_events=3),
            "overloaded",
            True,
            None,
            id="overloaded-mid-stream",
        ),
        pytest.param(Reply(drop_after=5), "connection_error", True, None, id="dropped"),
        # the body ends cleanly, but before message_stop
        pytest.param(Reply(cut_after=5), "connection_error", True, None, id="cut-short"),
    ],
)
async def test_each_failure_is_the_right_provider_error(
    anthropic_api: Served[FakeAnthropicApi],
    anthropic_provider: OpenProvider,
    turn: Turn,
    code: str,
    retryable: bool,
    retry_after: float | None,
) -> None:
    anthropic_api.fake.script(turn)
    async with anthropic_provider() as provider:
        with pytest.raises(ProviderError) as caught:
            await provider.complete(model_request())
    assert (caught.value.code, caught.value.retryable) == (code, retryable)
    assert caught.value.retry_after == retry_after
    assert "sk-ant-test-key" not in str(caught.value)
    assert len(anthropic_api.fake.calls) == 1  # the SDK itself never retries


async def test_a_stream_that_goes_quiet_hits_the_idle_timeout_and_is_closed(
    anthropic_api: Served[FakeAnthropicApi], anthropic_provider: OpenProvider
) -> None:
    anthropic_api.fake.script(Reply(delay=30))
    async with anthropic_provider(provider_idle_timeout=0.5) as provider:
        with pytest.raises(ProviderError) as caught:
            await provider.complete(model_request())
    assert (caught.value.code, caught.value.retryable) == ("timeout", True)

    async def hung_up() -> float | None:
        return anthropic_api.fake.calls[0].disconnected_at

    await eventually(hung_up, within=5)


async def test_a_call_that_trickles_on_hits_the_total_timeout(
    anthropic_api: Served[FakeAnthropicApi], anthropic_provider: OpenProvider
) -> None:
    # every gap is under the idle timeout, the whole stream (~14 events) is far over the total
    anthropic_api.fake.script(Reply(delay=0.3))
    async with anthropic_provider(provider_call_timeout=1, provider_idle_timeout=5) as provider:
        with pytest.raises(ProviderError) as caught:
            await provider.complete(model_request())
    assert (caught.value.code, caught.value.retryable) == ("timeout", True)
    assert "longer than 1s" in caught.value.message


async def test_nothing_listening_is_a_connection_error() -> None:
    settings = AgentSettings(
        llm_provider="anthropic",
        anthropic_api_key="sk-ant-test-key",
        anthropic_base_url=f"http://127.0.0.1:{free_port()}",
    )
    async with open_provider(settings) as provider:
        with pytest.raises(ProviderError) as caught:
            await provider.complete(model_request())
    assert (caught.value.code, caught.value.retryable) == ("connection_error", True)


async def test_cancelling_a_call_closes_the_stream_within_5_seconds() -> None:
    # the fake on its own thread and loop, as when the agent is another process
    fake = FakeAnthropicApi()
    fake.script(Reply([Text("a long answer")], delay=30))
    with fake.running_in_thread() as url:
        settings = AgentSettings(
            llm_provider="anthropic", anthropic_api_key="sk-ant-test-key", anthropic_base_url=url
        )
        async with open_provider(settings) as provider:
            call = asyncio.create_task(provider.complete(model_request()))

            async def streaming() -> int:
                return fake.calls[0].events_sent if fake.calls else 0

            await eventually(streaming)
            cancelled_at = time.monotonic()
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call

            async def hung_up() -> float | None:
                return fake.calls[0].disconnected_at

            closed_at = await eventually(hung_up, within=5)
    assert closed_at is not None
    assert closed_at - cancelled_at < 5
    assert not fake.calls[0].finished
