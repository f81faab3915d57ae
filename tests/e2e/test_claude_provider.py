"""The agent on the Anthropic provider: the official SDK in the agent process talks to a fake
Messages API (real wire format, streaming) served by this test process. Public API only."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from relay_devkit.api_client import PublicApi
from relay_devkit.fakes import (
    ApiError,
    FakeAnthropicApi,
    Reply,
    Text,
    TokenUsage,
    ToolUse,
    writes_file,
)
from relay_devkit.testing import eventually, fresh_database
from relay_ops.stack.process import RunningStack, running_stack

pytestmark = pytest.mark.e2e

PROVIDER_KEY = "sk-ant-fake-key-for-tests"
REPORT = "# Findings\n\nThe fake model wrote this, byte for byte: é ✓\n"
PER_REPLY = TokenUsage(
    input_tokens=1200,
    output_tokens=340,
    cache_creation_input_tokens=500,
    cache_read_input_tokens=700,
)
# claude-sonnet-4-5 in the agent's documented price table, USD per million tokens
SONNET = {"input": 3.0, "output": 15.0, "cache_write": 3.75, "cache_read": 0.30}


@pytest.fixture(scope="module")
def fake_model() -> Iterator[tuple[FakeAnthropicApi, str]]:
    fake = FakeAnthropicApi(model=writes_file("report.md", REPORT, usage=PER_REPLY))
    with fake.running_in_thread() as base_url:
        yield fake, base_url


@pytest.fixture(scope="module")
def claude_stack(
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    fake_model: tuple[FakeAnthropicApi, str],
    aws_credentials: None,
) -> Iterator[RunningStack]:
    _, base_url = fake_model
    with (
        fresh_database() as database_url,
        running_stack(
            database_url,
            redis_url,
            tmp_path_factory.mktemp("claude-stack"),
            RELAY_LLM_PROVIDER="anthropic",
            ANTHROPIC_BASE_URL=base_url,
            ANTHROPIC_API_KEY=PROVIDER_KEY,
            # every library's debug output too: none of it may carry a key
            RELAY_LOG_LEVEL="DEBUG",
        ) as up,
    ):
        yield up


@pytest.fixture
async def claude_api(claude_stack: RunningStack) -> AsyncIterator[PublicApi]:
    client = PublicApi(claude_stack.gateway_url, claude_stack.create_key("claude-e2e"))
    yield client
    await client.aclose()


def _cost(usage: TokenUsage) -> float:
    return (
        usage.input_tokens * SONNET["input"]
        + usage.output_tokens * SONNET["output"]
        + usage.cache_creation_input_tokens * SONNET["cache_write"]
        + usage.cache_read_input_tokens * SONNET["cache_read"]
    ) / 1_000_000


async def test_a_file_the_model_writes_becomes_the_artifact_and_usage_adds_up(
    claude_api: PublicApi, fake_model: tuple[FakeAnthropicApi, str]
) -> None:
    fake, _ = fake_model
    calls_before = len(fake.calls)
    task = await claude_api.submit("Investigate and write up your findings.")
    events = await claude_api.timeline(task["id"])
    assert events[-1].event == "task.succeeded", events[-1]

    [artifact] = await claude_api.artifacts(task["id"])
    assert artifact["name"] == "report.md"
    content = await claude_api.http.get(
        f"/v1/tasks/{task['id']}/artifacts/{artifact['id']}/content", follow_redirects=True
    )
    assert content.text == REPORT

    calls = fake.calls[calls_before:]
    assert len(calls) == 2  # write_file, then the closing reply
    reported = TokenUsage(0, 0)
    for call in calls:
        reported += call.reported_usage
    final = await claude_api.finished_task(task["id"])
    assert final["usage"] == {
        "input_tokens": reported.input_tokens,
        "output_tokens": reported.output_tokens,
        "cache_creation_input_tokens": reported.cache_creation_input_tokens,
        "cache_read_input_tokens": reported.cache_read_input_tokens,
        "cost_usd": pytest.approx(_cost(reported)),
    }
    first = calls[0]
    assert first.streamed
    assert first.body["model"] == "claude-sonnet-4-5"
    assert first.credential == "sk-ant-fake-key-for-tests"
    assert {tool["name"] for tool in first.body["tools"]} >= {
        "write_file",
        "read_file",
        "list_files",
    }
    # the second call carries the tool result of the first
    assert calls[1].body["messages"][-1]["content"][0]["type"] == "tool_result"


async def test_cancel_while_the_model_streams_closes_its_connection_within_5_s(
    claude_api: PublicApi, fake_model: tuple[FakeAnthropicApi, str]
) -> None:
    fake, _ = fake_model
    # a reply that takes about a minute to stream
    fake.script(Reply([Text("thinking " * 60)], PER_REPLY, delay=1.0))
    calls_before = len(fake.calls)
    task = await claude_api.submit("Think slowly.")

    async def streaming() -> list[Any]:
        return [c for c in fake.calls[calls_before:] if c.events_sent > 0]

    [call] = await eventually(streaming, within=30)
    cancelled_at = time.monotonic()
    response = await claude_api.http.post(f"/v1/tasks/{task['id']}/cancel")
    assert response.status_code == 202
    assert response.json()["status"] == "cancelling"

    async def disconnected() -> float | None:
        return call.disconnected_at

    closed_at = await eventually(disconnected, within=10)
    assert closed_at - cancelled_at < 5.0
    events = await claude_api.timeline(task["id"])
    assert events[-1].event == "task.cancelled"
    assert [e.event for e in events].count("task.cancelled") == 1
    assert sum(e.event in {"task.succeeded", "task.failed"} for e in events) == 0
    assert (await claude_api.finished_task(task["id"]))["status"] == "cancelled"
    again = await claude_api.http.post(f"/v1/tasks/{task['id']}/cancel")
    assert again.status_code == 409


async def test_a_refused_key_fails_the_task_at_once_and_a_rate_limit_is_retried(
    claude_api: PublicApi, fake_model: tuple[FakeAnthropicApi, str]
) -> None:
    fake, _ = fake_model
    calls_before = len(fake.calls)
    fake.script(ApiError.unauthorized())
    refused = await claude_api.submit("This key will be refused.")
    events = await claude_api.timeline(refused["id"])
    assert events[-1].event == "task.failed"
    assert events[-1].data["data"]["code"] == "provider_auth_failed"
    assert len(fake.calls) == calls_before + 1  # final: not retried

    fake.script(ApiError.rate_limited(retry_after=0.2))  # then the model function answers
    limited = await claude_api.submit("Busy at first.")
    events = await claude_api.timeline(limited["id"])
    assert events[-1].event == "task.succeeded"


async def test_no_api_key_or_provider_key_reaches_a_log_line_or_a_span(
    claude_stack: RunningStack, fake_model: tuple[FakeAnthropicApi, str]
) -> None:
    fake, _ = fake_model
    api_key = claude_stack.create_key("secrets-e2e")
    client = PublicApi(claude_stack.gateway_url, api_key)
    try:
        task = await client.submit("Write up your findings.")
        assert (await client.finished_task(task["id"]))["status"] == "succeeded"
        fake.script(ApiError.unauthorized())  # the provider refuses the key: logged as such
        refused = await client.submit("This key will be refused.")
        assert (await client.finished_task(refused["id"]))["status"] == "failed"
    finally:
        await client.aclose()
    wrong = "rly_" + "w" * 43  # a key of the right shape that does not exist
    async with httpx.AsyncClient(base_url=claude_stack.gateway_url) as anonymous:
        response = await anonymous.get("/v1/tasks", headers={"Authorization": f"Bearer {wrong}"})
        assert response.status_code == 401

    await asyncio.sleep(1.5)  # spans are written a second after they end
    files = [
        *claude_stack.config.log_dir.glob("*.log"),
        *claude_stack.config.telemetry_dir.glob("*.jsonl"),
    ]
    assert {f.name for f in files} >= {"agent.log", "gateway.log", "agent.spans.jsonl"}
    agent_log = (claude_stack.config.log_dir / "agent.log").read_text()
    assert "provider_auth_failed" in agent_log  # the refusal was logged, without the key
    for path in files:
        text = path.read_text(errors="replace")
        for secret in (api_key, PROVIDER_KEY, wrong):
            assert secret not in text, f"{path.name} holds a key"


async def test_the_model_asks_with_ask_user_and_goes_on_with_the_answer(
    claude_api: PublicApi, fake_model: tuple[FakeAnthropicApi, str]
) -> None:
    """A real tool_use of ask_user through the SDK: the task waits, and the next request the
    model gets answers that call with the client's text."""
    fake, _ = fake_model
    ask = ToolUse("ask_user", {"question": "Which region should I deploy to?"})
    fake.script(Reply([ask], PER_REPLY), Reply([Text("Deployed to the region you chose.")]))
    calls_before = len(fake.calls)
    task = await claude_api.submit("Deploy the service.")

    waiting = await eventually(
        lambda: claude_api.task(task["id"]),
        until=lambda t: t["status"] == "waiting_for_input",
        within=30,
    )
    assert waiting["question"]["text"] == "Which region should I deploy to?"
    assert len(fake.calls) - calls_before == 1  # nothing more is asked of the model meanwhile
    answered = await claude_api.http.post(
        f"/v1/tasks/{task['id']}/input", json={"text": "eu-central-1"}
    )
    assert answered.status_code == 202, answered.text

    final = await claude_api.finished_task(task["id"], within=60)
    assert final["status"] == "succeeded", final
    assert final["result"]["summary"] == "Deployed to the region you chose."
    first, second = fake.calls[calls_before:]
    assert "ask_user" in {tool["name"] for tool in first.body["tools"]}
    # the conversation goes on where it stopped: the assistant turn that asked, then the answer
    assert second.body["messages"][-2]["content"][0]["id"] == ask.id
    assert second.body["messages"][-1]["content"] == [
        {"type": "tool_result", "tool_use_id": ask.id, "content": "eu-central-1", "is_error": False}
    ]
