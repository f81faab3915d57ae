"""A task's budgets, checked before every model call and after every reply, so a limit stops
the task before the money is spent rather than after.

max_wall_seconds is not checked here: the whole attempt runs under an asyncio deadline
(work.py), which interrupts a model stream or a tool the moment it passes.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.pricing import ModelPrice, report_usd
from agent.providers.base import ModelReply
from relay_shared.events import TaskLimits, Usage

MAX_TURNS = "max_turns"
MAX_OUTPUT_TOKENS = "max_output_tokens"
MAX_WALL_SECONDS = "max_wall_seconds"
MAX_COST_USD = "max_cost_usd"


class BudgetExceeded(Exception):
    """The task hit one of its limits; it ends failed with code budget_exceeded."""

    def __init__(self, budget: str, message: str) -> None:
        super().__init__(message)
        self.budget = budget
        self.message = message


@dataclass(frozen=True)
class CallCap:
    """The ``max_tokens`` of the next model call, and the budget that set it (None when the
    RELAY_MODEL_MAX_TOKENS setting was the lower one)."""

    max_tokens: int
    budget: str | None


@dataclass(frozen=True)
class Budget:
    limits: TaskLimits
    price: ModelPrice | None  # required when limits.max_cost_usd is set
    model_max_tokens: int

    def before_call(self, calls: int, usage: Usage, cost_usd: float) -> CallCap:
        """The cap for call number ``calls + 1``; raises when a budget leaves nothing for it."""
        limits = self.limits
        if calls >= limits.max_turns:
            raise BudgetExceeded(
                MAX_TURNS,
                f"The model did not finish within the task's max_turns budget of"
                f" {limits.max_turns} model calls.",
            )
        caps = [
            CallCap(self.model_max_tokens, None),
            CallCap(limits.max_output_tokens - usage.output_tokens, MAX_OUTPUT_TOKENS),
        ]
        if limits.max_cost_usd is not None and self.price is not None:
            # whatever the input costs, the reply's output cannot cost more than is left
            left = limits.max_cost_usd - cost_usd
            caps.append(CallCap(self.price.output_tokens_for(left), MAX_COST_USD))
        # On a tie the budget is named: a reply cut there has used it up.
        cap = min(caps, key=lambda c: (c.max_tokens, c.budget is None))
        if cap.max_tokens < 1:
            assert cap.budget is not None  # RELAY_MODEL_MAX_TOKENS is at least 1
            raise self._spent(cap.budget, usage, cost_usd)
        return cap

    def after_reply(self, reply: ModelReply, cap: CallCap, usage: Usage, cost_usd: float) -> None:
        """Raises when the reply took the task over a budget or was cut short by one."""
        limits = self.limits
        if limits.max_cost_usd is not None and cost_usd > limits.max_cost_usd:
            raise self._spent(MAX_COST_USD, usage, cost_usd)
        if usage.output_tokens > limits.max_output_tokens:
            raise self._spent(MAX_OUTPUT_TOKENS, usage, cost_usd)
        if reply.stop_reason == "max_tokens" and cap.budget is not None:
            raise self._cut(cap, cost_usd)

    def _cut(self, cap: CallCap, cost_usd: float) -> BudgetExceeded:
        limits = self.limits
        if cap.budget == MAX_COST_USD:
            return BudgetExceeded(
                MAX_COST_USD,
                f"The model's reply was cut at the {cap.max_tokens} output tokens the task's"
                f" max_cost_usd budget of ${limits.max_cost_usd:g} still paid for (estimated"
                f" cost so far ${report_usd(cost_usd):g}).",
            )
        return BudgetExceeded(
            MAX_OUTPUT_TOKENS,
            f"The model's reply was cut at the {cap.max_tokens} output tokens left in the"
            f" task's max_output_tokens budget of {limits.max_output_tokens}.",
        )

    def _spent(self, budget: str, usage: Usage, cost_usd: float) -> BudgetExceeded:
        limits = self.limits
        if budget == MAX_COST_USD:
            return BudgetExceeded(
                budget,
                f"The task's estimated cost (${report_usd(cost_usd):g}) reached its"
                f" max_cost_usd budget of ${limits.max_cost_usd:g}.",
            )
        return BudgetExceeded(
            budget,
            f"The task used {usage.output_tokens} of its max_output_tokens budget of"
            f" {limits.max_output_tokens}.",
        )


def wall_time_exceeded(limits: TaskLimits) -> BudgetExceeded:
    return BudgetExceeded(
        MAX_WALL_SECONDS,
        f"The task ran out of its max_wall_seconds budget of {limits.max_wall_seconds:g} s.",
    )
