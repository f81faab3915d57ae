"""What a model provider speaks: one Messages API call, in Messages API terms (the
ModelProvider port itself is in agent.ports).

Requests and replies use the Anthropic Messages API wire shapes, so the Anthropic SDK, Bedrock and
Vertex providers pass them straight through and the agent loop never knows which one it talks to.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from relay_shared.events import Usage


class _Block(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class TextBlock(_Block):
    type: Literal["text"] = "text"
    text: str


class ToolUseBlock(_Block):
    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: dict[str, Any] = Field(default_factory=dict)


ContentBlock = Annotated[TextBlock | ToolUseBlock, Field(discriminator="type")]


class ToolSpec(_Block):
    """A tool as the Messages API ``tools`` parameter declares it."""

    name: str
    description: str
    input_schema: dict[str, Any]


class ModelRequest(_Block):
    model: str
    system: str
    messages: list[dict[str, Any]] = Field(description="Messages API wire format.")
    tools: list[ToolSpec] = Field(default_factory=list)
    max_tokens: int = Field(ge=1)


class ModelReply(_Block):
    content: list[ContentBlock]
    stop_reason: str
    usage: Usage = Field(default_factory=Usage)

    @property
    def text(self) -> str:
        return "\n".join(b.text for b in self.content if isinstance(b, TextBlock)).strip()

    @property
    def tool_uses(self) -> list[ToolUseBlock]:
        return [b for b in self.content if isinstance(b, ToolUseBlock)]

    def as_message(self) -> dict[str, Any]:
        """The reply as the assistant turn of the next request."""
        return {"role": "assistant", "content": [b.model_dump() for b in self.content]}


class ProviderError(Exception):
    """The model call failed in a way the provider understood (not a bug in the agent)."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after  # seconds the provider asked us to wait, if it said
