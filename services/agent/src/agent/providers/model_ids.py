"""Client-facing model names -> each provider's model id.

Clients name models the Anthropic way ("claude-sonnet-4-5"); Bedrock and Vertex know them by
their own ids. ``RELAY_MODEL_IDS`` (JSON) overrides or extends the table of the provider in use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from agent.providers.base import ProviderError

DEFAULT_MODEL_IDS: Mapping[str, Mapping[str, str]] = {
    # the Anthropic API takes the name itself (see ModelIds.passthrough)
    "anthropic": {},
    "bedrock": {
        "claude-sonnet-4-5": "anthropic.claude-sonnet-4-5-20250929-v1:0",
        "claude-haiku-4-5": "anthropic.claude-haiku-4-5-20251001-v1:0",
        "claude-opus-4-1": "anthropic.claude-opus-4-1-20250805-v1:0",
    },
    "vertex": {
        "claude-sonnet-4-5": "claude-sonnet-4-5@20250929",
        "claude-haiku-4-5": "claude-haiku-4-5@20251001",
        "claude-opus-4-1": "claude-opus-4-1@20250805",
    },
}


@dataclass(frozen=True)
class ModelIds:
    provider: str
    ids: Mapping[str, str] = field(default_factory=dict)
    passthrough: bool = False  # an unmapped name is the id (the Anthropic API)

    @classmethod
    def for_provider(cls, provider: str, overrides: Mapping[str, str]) -> ModelIds:
        ids = {**DEFAULT_MODEL_IDS.get(provider, {}), **overrides}
        return cls(provider, ids, passthrough=provider == "anthropic")

    def resolve(self, name: str) -> str:
        model_id = self.ids.get(name) or (name if self.passthrough else None)
        if not model_id:
            raise ProviderError(
                "model_not_found",
                f"model {name!r} has no {self.provider} model id; map it in RELAY_MODEL_IDS",
            )
        return model_id
