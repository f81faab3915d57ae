from __future__ import annotations

import pytest

from agent.providers.base import ProviderError
from agent.providers.model_ids import ModelIds


@pytest.mark.parametrize(
    ("provider", "name", "model_id"),
    [
        ("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5"),
        ("anthropic", "claude-opus-4-1", "claude-opus-4-1"),
        ("bedrock", "claude-sonnet-4-5", "anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ("bedrock", "claude-haiku-4-5", "anthropic.claude-haiku-4-5-20251001-v1:0"),
        ("bedrock", "claude-opus-4-1", "anthropic.claude-opus-4-1-20250805-v1:0"),
        ("vertex", "claude-sonnet-4-5", "claude-sonnet-4-5@20250929"),
        ("vertex", "claude-haiku-4-5", "claude-haiku-4-5@20251001"),
        ("vertex", "claude-opus-4-1", "claude-opus-4-1@20250805"),
    ],
)
def test_default_ids(provider: str, name: str, model_id: str) -> None:
    assert ModelIds.for_provider(provider, {}).resolve(name) == model_id


def test_overrides_replace_and_extend_the_providers_table() -> None:
    ids = ModelIds.for_provider(
        "bedrock",
        {
            "claude-sonnet-4-5": "eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "claude-next": "anthropic.claude-next-v1:0",
        },
    )
    assert ids.resolve("claude-sonnet-4-5") == "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert ids.resolve("claude-next") == "anthropic.claude-next-v1:0"
    assert ids.resolve("claude-haiku-4-5") == "anthropic.claude-haiku-4-5-20251001-v1:0"


def test_anthropic_override_wins_over_the_name_itself() -> None:
    ids = ModelIds.for_provider("anthropic", {"claude-sonnet-4-5": "claude-sonnet-4-5-20250929"})
    assert ids.resolve("claude-sonnet-4-5") == "claude-sonnet-4-5-20250929"


@pytest.mark.parametrize("provider", ["bedrock", "vertex"])
def test_an_unmapped_name_is_model_not_found_and_not_retried(provider: str) -> None:
    with pytest.raises(ProviderError) as caught:
        ModelIds.for_provider(provider, {}).resolve("claude-3-opus")
    assert (caught.value.code, caught.value.retryable) == ("model_not_found", False)
    assert "RELAY_MODEL_IDS" in caught.value.message
