"""What a fake model endpoint answers: scripted turns, and the Messages API shapes they become.

A turn is either a ``Reply`` (content blocks, usage, stop reason; optionally a slow stream or a
connection dropped after k events) or an ``ApiError`` (an HTTP error, or an ``error`` event in the
middle of a stream). Every fake (Anthropic API, Bedrock, Vertex) renders the same turns in its own
wire format, so a test scripts a conversation once and runs it through any of the three clients.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Request body (the Messages API JSON the client sent) -> the turn to answer with.
ModelFunction = Callable[[dict[str, Any]], "Turn"]


@dataclass(frozen=True)
class TokenUsage:
    input_tokens: int = 10
    output_tokens: int = 5
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def as_json(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
        }

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_creation_input_tokens + other.cache_creation_input_tokens,
            self.cache_read_input_tokens + other.cache_read_input_tokens,
        )


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class ToolUse:
    name: str
    input: Mapping[str, Any]
    id: str = field(default_factory=lambda: f"toolu_fake_{uuid.uuid4().hex[:16]}")


Block = Text | ToolUse


@dataclass(frozen=True)
class Reply:
    """A model reply. ``delay`` is the pause between stream events (a slow stream);
    ``drop_after`` closes the connection after that many events, without ending the body;
    ``cut_after`` ends the body cleanly after that many events (a proxy giving up)."""

    content: Sequence[Block] = (Text("Done."),)
    usage: TokenUsage = field(default_factory=TokenUsage)
    stop_reason: str | None = None  # default: tool_use when a block uses a tool, else end_turn
    delay: float = 0.0
    drop_after: int | None = None
    cut_after: int | None = None

    @property
    def final_stop_reason(self) -> str:
        if self.stop_reason is not None:
            return self.stop_reason
        return "tool_use" if any(isinstance(b, ToolUse) for b in self.content) else "end_turn"


@dataclass(frozen=True)
class ApiError:
    """An error answer: the HTTP status and the API's error type and message.

    With ``after_events`` set, a streaming request gets 200 and that many events first, then
    the error as an ``error`` event (what the API does when it overloads mid-stream)."""

    status: int
    type: str
    message: str
    retry_after: float | None = None
    after_events: int | None = None

    @classmethod
    def rate_limited(cls, retry_after: float = 1.0) -> ApiError:
        return cls(
            429,
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit",
            retry_after,
        )

    @classmethod
    def overloaded(cls) -> ApiError:
        return cls(529, "overloaded_error", "Overloaded")

    @classmethod
    def server_error(cls) -> ApiError:
        return cls(500, "api_error", "Internal server error")

    @classmethod
    def unauthorized(cls) -> ApiError:
        return cls(401, "authentication_error", "invalid x-api-key")

    @classmethod
    def invalid_request(cls, message: str = "messages: field required") -> ApiError:
        return cls(400, "invalid_request_error", message)

    @classmethod
    def not_found(cls) -> ApiError:
        return cls(404, "not_found_error", "model: not found")

    def body(self) -> dict[str, Any]:
        return {
            "type": "error",
            "error": {"type": self.type, "message": self.message},
            "request_id": f"req_fake_{uuid.uuid4().hex[:12]}",
        }

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after is None else {"retry-after": f"{self.retry_after:g}"}


Turn = Reply | ApiError


def message_json(reply: Reply, *, model: str, message_id: str) -> dict[str, Any]:
    """The non-streaming Messages API response for ``reply``."""
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [_block_json(b) for b in reply.content],
        "stop_reason": reply.final_stop_reason,
        "stop_sequence": None,
        "usage": reply.usage.as_json(),
    }


def stream_events(reply: Reply, *, model: str, message_id: str) -> list[dict[str, Any]]:
    """The Messages API stream for ``reply``, event by event, as the API sends it: usage without
    output tokens in message_start, the cumulative output tokens in message_delta."""
    start_usage = {**reply.usage.as_json(), "output_tokens": 1}
    message = {
        **message_json(reply, model=model, message_id=message_id),
        "content": [],
        "stop_reason": None,
        "usage": start_usage,
    }
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": message},
        {"type": "ping"},
    ]
    for index, block in enumerate(reply.content):
        events.extend(_block_events(index, block))
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": reply.final_stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": reply.usage.output_tokens},
        }
    )
    events.append({"type": "message_stop"})
    return events


def _block_json(block: Block) -> dict[str, Any]:
    if isinstance(block, Text):
        return {"type": "text", "text": block.text}
    return {"type": "tool_use", "id": block.id, "name": block.name, "input": dict(block.input)}


def _block_events(index: int, block: Block) -> Iterator[dict[str, Any]]:
    if isinstance(block, Text):
        yield {
            "type": "content_block_start",
            "index": index,
            "content_block": {"type": "text", "text": ""},
        }
        for piece in _pieces(block.text, 3):
            delta = {"type": "text_delta", "text": piece}
            yield {"type": "content_block_delta", "index": index, "delta": delta}
    else:
        yield {
            "type": "content_block_start",
            "index": index,
            "content_block": {"type": "tool_use", "id": block.id, "name": block.name, "input": {}},
        }
        # the API sends a tool's input as partial JSON strings the client must join
        for piece in _pieces(json.dumps(dict(block.input)), 3):
            delta = {"type": "input_json_delta", "partial_json": piece}
            yield {"type": "content_block_delta", "index": index, "delta": delta}
    yield {"type": "content_block_stop", "index": index}


def _pieces(text: str, count: int) -> list[str]:
    """``text`` cut into ``count`` non-empty pieces (fewer when it is shorter)."""
    size = max(1, -(-len(text) // count))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def writes_file(path: str, content: str, *, usage: TokenUsage | None = None) -> ModelFunction:
    """A model for end-to-end tests: calls ``write_file(path, content)`` once, then ends."""
    usage = usage or TokenUsage()

    def answer(body: dict[str, Any]) -> Turn:
        replied = sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
        if replied == 0:
            return Reply([ToolUse("write_file", {"path": path, "content": content})], usage)
        return Reply([Text(f"Wrote {path}.")], usage)

    return answer
