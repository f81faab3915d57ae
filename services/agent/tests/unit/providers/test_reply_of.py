"""The SDK's final message -> our ModelReply."""

from __future__ import annotations

from anthropic.types import Message

from agent.providers.base import TextBlock, ToolUseBlock
from agent.providers.claude import reply_of
from relay_shared.events import Usage


def _message(**overrides: object) -> Message:
    fields: dict[str, object] = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "text", "text": "Writing it."},
            {"type": "tool_use", "id": "toolu_1", "name": "write_file", "input": {"path": "a"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 12,
            "output_tokens": 34,
            "cache_creation_input_tokens": None,
            "cache_read_input_tokens": 5,
        },
        **overrides,
    }
    return Message.model_validate(fields)


def test_text_and_tool_use_blocks_are_kept_other_blocks_dropped() -> None:
    reply = reply_of(_message())
    assert reply.content == [
        TextBlock(text="Writing it."),
        ToolUseBlock(id="toolu_1", name="write_file", input={"path": "a"}),
    ]
    assert reply.stop_reason == "tool_use"


def test_absent_cache_counts_are_zero() -> None:
    assert reply_of(_message()).usage == Usage(
        input_tokens=12, output_tokens=34, cache_creation_input_tokens=0, cache_read_input_tokens=5
    )


def test_a_message_without_stop_reason_ends_the_turn() -> None:
    assert reply_of(_message(stop_reason=None)).stop_reason == "end_turn"
