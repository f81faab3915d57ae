"""Model providers by name; ``RELAY_LLM_PROVIDER`` picks one at start-up."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from agent.providers.base import ModelProvider
from agent.providers.scripted import ScriptedProvider
from agent.settings import AgentSettings

# Real providers (anthropic, bedrock, vertex) register here too; each builds from settings.
PROVIDERS: Mapping[str, Callable[[AgentSettings], ModelProvider]] = {
    "scripted": lambda _settings: ScriptedProvider(),
}


class UnknownProvider(ValueError):
    pass


def provider_from_settings(settings: AgentSettings) -> ModelProvider:
    try:
        build = PROVIDERS[settings.llm_provider]
    except KeyError:
        known = ", ".join(sorted(PROVIDERS))
        raise UnknownProvider(
            f"RELAY_LLM_PROVIDER={settings.llm_provider!r} is not a known provider;"
            f" choose one of: {known}"
        ) from None
    return build(settings)
