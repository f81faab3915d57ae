"""Counters from the services' metrics files (``<telemetry dir>/<service>.metrics.jsonl``: one
OpenTelemetry MetricsData export per line, cumulative), e.g. relay.aws.calls."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

Key = tuple[str, str]  # (metric name, a label made of its attributes, e.g. "sqs.ReceiveMessage")


def _label(attributes: dict[str, Any]) -> str:
    if "rpc.service" in attributes and "rpc.method" in attributes:
        return f"{attributes['rpc.service']}.{attributes['rpc.method']}"
    return ",".join(f"{k}={v}" for k, v in sorted(attributes.items()))


def counter_totals(export: dict[str, Any], names: frozenset[str]) -> tuple[int, Counter[Key]]:
    """The cumulative counter values in one export for the metrics ``names``, and the export's
    time (the latest point's time_unix_nano; 0 if it holds none of them)."""
    totals: Counter[Key] = Counter()
    at = 0
    for resource in export.get("resource_metrics", []):
        for scope in resource.get("scope_metrics", []):
            for metric in scope.get("metrics", []):
                if metric.get("name") not in names:
                    continue
                for point in metric.get("data", {}).get("data_points", []):
                    totals[(metric["name"], _label(point.get("attributes") or {}))] += point.get(
                        "value", 0
                    )
                    at = max(at, int(point.get("time_unix_nano", 0)))
    return at, totals


def latest_totals(path: Path, names: frozenset[str]) -> tuple[int, Counter[Key]]:
    """The last export in ``path`` that holds any of ``names`` (a torn last line is skipped);
    (0, empty) when there is none yet."""
    if not path.exists():
        return 0, Counter()
    for line in reversed(path.read_text(encoding="utf-8").splitlines()):
        try:
            at, totals = counter_totals(json.loads(line), names)
        except (ValueError, TypeError, AttributeError):
            continue
        if at:
            return at, totals
    return 0, Counter()


def difference(after: Counter[Key], before: Counter[Key]) -> Counter[Key]:
    """What was counted between two cumulative snapshots (keys that did not move are left out)."""
    return Counter({k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)})
