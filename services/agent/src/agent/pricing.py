"""What a task's tokens cost: a price table by model name, in USD per million tokens.

The figures are an estimate for budgets and usage reports, not a bill: they are the published
list prices when this table was written, and ``RELAY_MODEL_PRICES`` replaces them per model.
A model the table does not know costs 0 and cannot run under a cost limit.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from relay_shared.events import Usage

PER_TOKENS = 1_000_000


class ModelPrice(BaseModel):
    """USD per million tokens of each kind the Messages API reports."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0)
    output: float = Field(gt=0)
    cache_write: float = Field(ge=0, description="cache_creation_input_tokens")
    cache_read: float = Field(ge=0, description="cache_read_input_tokens")

    def cost(self, usage: Usage) -> float:
        return (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + usage.cache_creation_input_tokens * self.cache_write
            + usage.cache_read_input_tokens * self.cache_read
        ) / PER_TOKENS

    def output_tokens_for(self, usd: float) -> int:
        """How many output tokens ``usd`` pays for (rounded down)."""
        return max(0, int(usd * PER_TOKENS / self.output))


DEFAULT_PRICES: Mapping[str, ModelPrice] = {
    "claude-opus-4-1": ModelPrice(input=15, output=75, cache_write=18.75, cache_read=1.50),
    "claude-sonnet-4-5": ModelPrice(input=3, output=15, cache_write=3.75, cache_read=0.30),
    "claude-haiku-4-5": ModelPrice(input=1, output=5, cache_write=1.25, cache_read=0.10),
}


class PriceTable:
    def __init__(self, overrides: Mapping[str, ModelPrice] | None = None) -> None:
        self._prices = {**DEFAULT_PRICES, **(overrides or {})}

    def price(self, model: str) -> ModelPrice | None:
        return self._prices.get(model)

    def cost(self, model: str, usage: Usage) -> float:
        price = self.price(model)
        return 0.0 if price is None else price.cost(usage)


def report_usd(cost: float) -> float:
    """A cost as events carry it: to a millionth of a dollar, without float noise."""
    return round(cost, 6)
