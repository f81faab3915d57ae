"""Percentiles and the summaries every figure is reported as."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks (numpy's
    default, 'linear'); NaN for no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0-100")
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Latency:
    """Latencies in seconds, summarised."""

    count: int
    p50: float
    p99: float
    max: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        return cls(
            count=len(seconds),
            p50=percentile(seconds, 50),
            p99=percentile(seconds, 99),
            max=max(seconds) if seconds else math.nan,
        )


def ratio(value: float, baseline: float) -> float:
    """``value / baseline``; NaN when the baseline is zero or missing (never a crash)."""
    if not baseline or math.isnan(baseline) or math.isnan(value):
        return math.nan
    return value / baseline
