from __future__ import annotations

from typing import Any

import pytest

from agent.providers.base import ModelReply, ModelRequest, ProviderError, ToolUseBlock
from agent.providers.scripted import ScriptedProvider, parse_script


def _request(prompt: Any, replies: list[ModelReply] = ()) -> ModelRequest:  # type: ignore[assignment]
    messages: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
    for reply in replies:
        messages.append(reply.as_message())
        results = [
            {"type": "tool_result", "tool_use_id": call.id, "content": "ok"}
            for call in reply.tool_uses
        ]
        messages.append({"role": "user", "content": results})
    return ModelRequest(model="scripted", system="s", messages=messages, max_tokens=100)


async def _converse(provider: ScriptedProvider, prompt: str, turns: int) -> list[ModelReply]:
    replies: list[ModelReply] = []
    for _ in range(turns):
        replies.append(await provider.complete(_request(prompt, replies)))
    return replies


def test_defaults_without_directives() -> None:
    script = parse_script("Summarise the quarterly numbers\nplease")
    assert (script.steps, script.sleep, script.artifacts, script.fail) == (
        2,
        0.0,
        ("result.md",),
        None,
    )
    assert script.title == "Summarise the quarterly numbers"


def test_directives_one_per_line_other_text_ignored() -> None:
    script = parse_script(
        "Make notes\n  /steps 4\n/sleep 0.5\n/artifact a.md\nsome /steps 9 prose\n"
        "/artifact data/b.csv\n/unknown thing\n/fail model fell over"
    )
    assert script.steps == 4
    assert script.sleep == 0.5
    assert script.artifacts == ("a.md", "data/b.csv")
    assert script.fail == "model fell over"


@pytest.mark.parametrize(("value", "expected"), [("0", 1), ("-3", 1), ("1", 1), ("7", 7)])
def test_steps_clamped_to_at_least_one(value: str, expected: int) -> None:
    assert parse_script(f"/steps {value}").steps == expected


@pytest.mark.parametrize(
    "prompt",
    ["/steps x", "/steps", "/steps 2.5", "/sleep abc", "/sleep -1", "/sleep nan", "/artifact"],
)
def test_invalid_directive_values(prompt: str) -> None:
    with pytest.raises(ProviderError) as caught:
        parse_script(prompt)
    assert caught.value.code == "invalid_directive"
    assert caught.value.retryable is False


def test_all_artifacts_are_written_on_the_last_step_earlier_steps_look_around() -> None:
    script = parse_script("/steps 3\n" + "\n".join(f"/artifact {n}" for n in "abcde"))
    assert [script.writes_on(turn) for turn in (1, 2, 3, 4)] == [
        [],
        [],
        ["a", "b", "c", "d", "e"],
        [],
    ]
    assert [parse_script("/steps 4").writes_on(t) for t in (1, 2, 3, 4, 5)] == [
        [],
        [],
        [],
        ["result.md"],
        [],
    ]
    assert [parse_script("/steps 1").writes_on(t) for t in (1, 2)] == [["result.md"], []]


async def test_conversation_follows_the_script() -> None:
    prompt = "Plan the offsite\n/steps 3\n/artifact plan.md\n/artifact budget.csv"
    replies = await _converse(ScriptedProvider(), prompt, 4)

    assert [r.stop_reason for r in replies] == ["tool_use", "tool_use", "tool_use", "end_turn"]
    calls = [[(c.name, c.input.get("path")) for c in r.tool_uses] for r in replies]
    assert calls == [
        [("list_files", None)],
        [("list_files", None)],
        [("write_file", "plan.md"), ("write_file", "budget.csv")],
        [],
    ]
    assert replies[3].text == "Completed 3 steps; wrote plan.md, budget.csv."
    assert [r.usage.input_tokens for r in replies] == [110, 120, 130, 140]
    assert {r.usage.output_tokens for r in replies} == {20}
    assert replies[0].tool_uses[0].input == {}
    for call in replies[2].tool_uses:
        content = call.input["content"]
        assert content.startswith(f"# {call.input['path']}\n")
        assert "Plan the offsite" in content
        assert "step 3 of 3" in content
    # tool_use ids are unique within the conversation
    ids = [c.id for r in replies for c in r.tool_uses]
    assert len(ids) == len(set(ids))


async def test_same_conversation_gets_the_same_reply() -> None:
    provider = ScriptedProvider()
    first = await _converse(provider, "x\n/steps 2", 3)
    again = await _converse(provider, "x\n/steps 2", 3)
    assert first == again


async def test_single_step_summary_is_singular() -> None:
    replies = await _converse(ScriptedProvider(), "/steps 1", 2)
    assert replies[1].text == "Completed 1 step; wrote result.md."


async def test_fail_raises_on_the_final_reply() -> None:
    provider = ScriptedProvider()
    replies = await _converse(provider, "Do it\n/steps 2\n/fail boom", 2)
    assert [r.stop_reason for r in replies] == ["tool_use", "tool_use"]
    with pytest.raises(ProviderError) as caught:
        await provider.complete(_request("Do it\n/steps 2\n/fail boom", replies))
    assert (caught.value.code, caught.value.message, caught.value.retryable) == (
        "scripted_failure",
        "boom",
        False,
    )


async def test_invalid_directive_surfaces_from_complete() -> None:
    with pytest.raises(ProviderError, match="invalid_directive"):
        await ScriptedProvider().complete(_request("/steps many"))


async def test_sleeps_before_every_reply() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    await _converse(ScriptedProvider(sleep=sleep), "/sleep 0.25\n/steps 2", 3)
    assert slept == [0.25, 0.25, 0.25]


async def test_no_sleep_by_default() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    await _converse(ScriptedProvider(sleep=sleep), "/steps 1", 2)
    assert slept == []


async def test_prompt_given_as_content_blocks() -> None:
    reply = await ScriptedProvider().complete(
        _request([{"type": "text", "text": "Title\n/steps 1\n/artifact out.txt"}])
    )
    call = reply.tool_uses[0]
    assert isinstance(call, ToolUseBlock)
    assert call.input["path"] == "out.txt"


async def test_ask_asks_first_then_follows_the_script_and_quotes_the_answer() -> None:
    provider = ScriptedProvider()
    prompt = "Deploy\n/ask Which region?\n/steps 1"

    replies = await _converse(provider, prompt, 3)

    [ask] = replies[0].tool_uses
    assert (ask.name, ask.input) == ("ask_user", {"question": "Which region?"})
    assert [call.name for call in replies[1].tool_uses] == ["write_file"]
    assert replies[2].stop_reason == "end_turn"
    # _request answers every call with "ok": that is the answer the summary quotes
    assert replies[2].text == (
        "Completed 1 step; wrote result.md. Asked 'Which region?'; the answer was 'ok'."
    )


def test_ask_needs_a_question() -> None:
    with pytest.raises(ProviderError) as caught:
        parse_script("/ask")
    assert caught.value.code == "invalid_directive"
