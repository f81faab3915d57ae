from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.pricing import DEFAULT_PRICES, ModelPrice, PriceTable
from agent.settings import AgentSettings
from relay_shared.events import Usage

USAGE = Usage(
    input_tokens=1_000_000,
    output_tokens=1_000_000,
    cache_creation_input_tokens=1_000_000,
    cache_read_input_tokens=1_000_000,
)


@pytest.mark.parametrize(
    ("model", "per_million_of_each"),
    [
        ("claude-opus-4-1", 15 + 75 + 18.75 + 1.50),
        ("claude-sonnet-4-5", 3 + 15 + 3.75 + 0.30),
        ("claude-haiku-4-5", 1 + 5 + 1.25 + 0.10),
    ],
)
def test_the_price_table_counts_every_kind_of_token(model, per_million_of_each) -> None:
    assert PriceTable().cost(model, USAGE) == pytest.approx(per_million_of_each)


def test_an_unknown_model_costs_nothing_and_has_no_price() -> None:
    table = PriceTable()
    assert table.price("scripted") is None
    assert table.cost("scripted", USAGE) == 0.0


def test_output_tokens_a_sum_pays_for_round_down() -> None:
    price = DEFAULT_PRICES["claude-sonnet-4-5"]
    assert price.output_tokens_for(0.001) == 66  # 66.7 at $15 per million
    assert price.output_tokens_for(0) == 0
    assert price.output_tokens_for(-1) == 0


def test_relay_model_prices_overrides_and_adds_entries(monkeypatch) -> None:
    monkeypatch.setenv(
        "RELAY_MODEL_PRICES",
        '{"claude-haiku-4-5": {"input": 2, "output": 8, "cache_write": 2.5, "cache_read": 0.2},'
        ' "scripted": {"input": 0, "output": 1, "cache_write": 0, "cache_read": 0}}',
    )
    table = PriceTable(AgentSettings().model_prices)
    assert table.price("claude-haiku-4-5") == ModelPrice(
        input=2, output=8, cache_write=2.5, cache_read=0.2
    )
    assert table.price("scripted") == ModelPrice(input=0, output=1, cache_write=0, cache_read=0)
    assert table.price("claude-opus-4-1") == DEFAULT_PRICES["claude-opus-4-1"]


def test_a_price_missing_a_field_is_refused_at_start_up(monkeypatch) -> None:
    monkeypatch.setenv("RELAY_MODEL_PRICES", '{"m": {"input": 1, "output": 2}}')
    with pytest.raises(ValidationError, match="cache_write"):
        AgentSettings()
