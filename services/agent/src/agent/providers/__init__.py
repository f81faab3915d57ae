"""Model providers by name; ``RELAY_LLM_PROVIDER`` picks one at start-up.

``check_provider_settings`` runs when the app is built (no I/O: an unknown name or a missing
setting stops it there); ``open_provider`` runs in the lifespan: it resolves credentials
(Secrets Manager, the AWS chain, Google ADC), so a worker that cannot reach its model never
takes a task, and it closes the SDK client on the way out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING

from agent.providers.clients import (
    missing_settings,
    open_anthropic,
    open_bedrock,
    open_scripted,
    open_vertex,
)
from agent.providers.credentials import ProviderConfigError

if TYPE_CHECKING:
    from agent.ports import ModelProvider
    from agent.settings import AgentSettings

    ProviderOpener = Callable[[AgentSettings], AbstractAsyncContextManager[ModelProvider]]

PROVIDERS: Mapping[str, ProviderOpener] = {
    "anthropic": open_anthropic,
    "bedrock": open_bedrock,
    "vertex": open_vertex,
    "scripted": open_scripted,
}

__all__ = [
    "PROVIDERS",
    "ProviderConfigError",
    "UnknownProvider",
    "check_provider_settings",
    "open_provider",
]


class UnknownProvider(ProviderConfigError, ValueError):
    pass


def check_provider_settings(settings: AgentSettings) -> None:
    if settings.llm_provider not in PROVIDERS:
        known = ", ".join(sorted(PROVIDERS))
        raise UnknownProvider(
            f"RELAY_LLM_PROVIDER={settings.llm_provider!r} is not a known provider;"
            f" choose one of: {known}"
        )
    missing = missing_settings(settings)
    if missing:
        raise ProviderConfigError(missing)


@asynccontextmanager
async def open_provider(settings: AgentSettings) -> AsyncIterator[ModelProvider]:
    """The configured provider, ready to call."""
    check_provider_settings(settings)
    async with PROVIDERS[settings.llm_provider](settings) as opened:
        yield opened
