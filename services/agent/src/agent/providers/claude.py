"""One provider over the SDK's async Messages API, for all three ways to reach Claude.

``AsyncAnthropic``, ``AsyncAnthropicBedrock`` and ``AsyncAnthropicVertex`` share the Messages
API and its exception types; only the model ids and the credentials differ (see clients.py).
Every call streams: the reply is assembled from the events as they arrive, so a long reply
never trips a read timeout, an idle stream does, and a cancelled call closes its connection.
"""

from __future__ import annotations

import asyncio
from typing import Any

from anthropic import AsyncAnthropic, AsyncAnthropicBedrock, AsyncAnthropicVertex
from anthropic.types import Message

from agent.providers.base import (
    ContentBlock,
    ModelReply,
    ModelRequest,
    ProviderError,
    TextBlock,
    ToolUseBlock,
)
from agent.providers.errors import failure, provider_error
from agent.providers.model_ids import ModelIds
from relay_shared.events import Usage

MessagesClient = AsyncAnthropic | AsyncAnthropicBedrock | AsyncAnthropicVertex


class ClaudeProvider:
    def __init__(self, client: MessagesClient, model_ids: ModelIds, *, call_timeout: float) -> None:
        self._client = client
        self._model_ids = model_ids
        self._call_timeout = call_timeout

    async def complete(self, request: ModelRequest) -> ModelReply:
        params = self._params(request)
        try:
            async with asyncio.timeout(self._call_timeout):
                message = await self._stream(params)
        except TimeoutError:
            raise failure(
                "timeout", f"the model call took longer than {self._call_timeout:g}s"
            ) from None
        except ProviderError:
            raise
        except Exception as exc:  # CancelledError is not an Exception: it goes through as is
            error = provider_error(exc)
            if error is None:
                raise
            raise error from exc
        return reply_of(message)

    async def _stream(self, params: dict[str, Any]) -> Message:
        # Leaving the block, normally or by cancellation, closes the HTTP response.
        async with self._client.messages.stream(**params) as stream:
            stopped = False
            async for event in stream:
                stopped = stopped or event.type == "message_stop"
            if not stopped:  # the body ended cleanly but early: a proxy cut it short
                raise failure("connection_error", "the stream ended before message_stop")
            return await stream.get_final_message()

    def _params(self, request: ModelRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self._model_ids.resolve(request.model),
            "max_tokens": request.max_tokens,
            "messages": request.messages,
        }
        if request.system:
            params["system"] = request.system
        if request.tools:
            params["tools"] = [tool.model_dump() for tool in request.tools]
        return params


def reply_of(message: Message) -> ModelReply:
    """Our ModelReply from the SDK's final message: text and tool_use blocks (others, such as
    thinking, are not part of the agent's conversation), usage with absent counts as 0."""
    content: list[ContentBlock] = []
    for block in message.content:
        if block.type == "text":
            content.append(TextBlock(text=block.text))
        elif block.type == "tool_use":
            tool_input = block.input if isinstance(block.input, dict) else {}
            content.append(ToolUseBlock(id=block.id, name=block.name, input=tool_input))
    usage = message.usage
    return ModelReply(
        content=content,
        stop_reason=message.stop_reason or "end_turn",
        usage=Usage(
            input_tokens=usage.input_tokens or 0,
            output_tokens=usage.output_tokens or 0,
            cache_creation_input_tokens=usage.cache_creation_input_tokens or 0,
            cache_read_input_tokens=usage.cache_read_input_tokens or 0,
        ),
    )
