"""Fake model endpoints for tests: the Anthropic Messages API, Bedrock Runtime and Vertex AI,
each in its real wire format, answering from one queue of scripted turns.

    fake = FakeAnthropicApi()
    fake.script(Reply([ToolUse("write_file", {"path": "a.md", "content": "hi"})]), Reply())
    async with serve_app(fake.app) as base_url: ...      # in the test's event loop
    with fake.running_in_thread() as base_url: ...       # for a client in another process
    fake.calls[-1].disconnected_at                       # when the client hung up, if it did
"""

from relay_devkit.fakes.anthropic_api import FakeAnthropicApi
from relay_devkit.fakes.bedrock import FakeBedrockApi
from relay_devkit.fakes.endpoint import FakeModelApi, ModelCall
from relay_devkit.fakes.turns import (
    ApiError,
    ModelFunction,
    Reply,
    Text,
    TokenUsage,
    ToolUse,
    Turn,
    writes_file,
)
from relay_devkit.fakes.vertex import FakeVertexApi

__all__ = [
    "ApiError",
    "FakeAnthropicApi",
    "FakeBedrockApi",
    "FakeModelApi",
    "FakeVertexApi",
    "ModelCall",
    "ModelFunction",
    "Reply",
    "Text",
    "TokenUsage",
    "ToolUse",
    "Turn",
    "writes_file",
]
