"""`relay trace TASK_ID`: a task's traces from the local span files, as indented trees.

Each service writes its spans as JSON lines into the stack's telemetry directory
(``RELAY_TELEMETRY_DIR``; relay_shared.telemetry). A task's trace is every trace holding a
span tagged with its id (``relay.task_id``): the one its POST started, and one per later
request that acted on it (a cancel, say).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.text import Text
from rich.tree import Tree

from relay_shared.tracing import xray_trace_id

SPAN_FILES = "*.spans.jsonl"


@dataclass
class SpanRecord:
    trace_id: int
    span_id: int
    parent_id: int | None
    name: str
    kind: str
    service: str
    start: datetime
    end: datetime
    status: str
    attributes: dict[str, Any]
    links: list[tuple[int, int]]
    children: list[SpanRecord] = field(default_factory=list)

    @property
    def duration_ms(self) -> float:
        return (self.end - self.start).total_seconds() * 1000

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> SpanRecord:
        context = document["context"]
        parent = document.get("parent_id")
        service = document.get("resource", {}).get("attributes", {}).get("service.name", "?")
        return cls(
            trace_id=int(context["trace_id"], 16),
            span_id=int(context["span_id"], 16),
            parent_id=int(parent, 16) if parent else None,
            name=document["name"],
            kind=document.get("kind", "").removeprefix("SpanKind."),
            service=service.removeprefix("relay-"),
            start=_instant(document["start_time"]),
            end=_instant(document["end_time"]),
            status=document.get("status", {}).get("status_code", "UNSET"),
            attributes=document.get("attributes") or {},
            links=[
                (int(link["context"]["trace_id"], 16), int(link["context"]["span_id"], 16))
                for link in document.get("links") or []
            ],
        )


@dataclass
class Trace:
    trace_id: int
    spans: list[SpanRecord]

    @property
    def xray_id(self) -> str:
        return xray_trace_id(self.trace_id)

    @property
    def services(self) -> set[str]:
        return {s.service for s in self.spans}

    @property
    def start(self) -> datetime:
        return min(s.start for s in self.spans)

    def roots(self) -> list[SpanRecord]:
        """Spans whose parent is not in the trace (the first request's, or a lost parent's),
        with every span's children filled in, all in start order."""
        by_id = {s.span_id: s for s in self.spans}
        for span in self.spans:
            span.children = []
        roots = []
        for span in sorted(self.spans, key=lambda s: s.start):
            parent = by_id.get(span.parent_id) if span.parent_id is not None else None
            if parent is None:
                roots.append(span)
            else:
                parent.children.append(span)
        return roots

    def span(self, span_id: int) -> SpanRecord | None:
        return next((s for s in self.spans if s.span_id == span_id), None)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def load_spans(directory: Path) -> Iterator[SpanRecord]:
    """Every span in the directory's span files; a torn last line (a process killed while
    writing) is skipped."""
    for path in sorted(directory.glob(SPAN_FILES)):
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    yield SpanRecord.from_json(json.loads(line))
                except (ValueError, KeyError, TypeError):
                    continue


def task_traces(spans: Iterable[SpanRecord], task_id: str) -> list[Trace]:
    """The traces that worked on ``task_id``, oldest first."""
    by_trace: dict[int, list[SpanRecord]] = defaultdict(list)
    for span in spans:
        by_trace[span.trace_id].append(span)
    found = [
        Trace(trace_id, members)
        for trace_id, members in by_trace.items()
        if any(s.attributes.get("relay.task_id") == task_id for s in members)
    ]
    return sorted(found, key=lambda t: t.start)


def render(trace: Trace) -> Tree:
    services = ", ".join(sorted(trace.services))
    tree = Tree(
        Text.assemble(
            ("trace ", "bold"),
            (trace.xray_id, "bold cyan"),
            f"  {len(trace.spans)} spans; {services}",
        )
    )
    by_id = {s.span_id: s for s in trace.spans}

    def add(node: Tree, span: SpanRecord) -> None:
        label = Text.assemble(
            (f"{span.service:<9} ", "magenta"),
            (span.name, "red" if span.status == "ERROR" else ""),
            (f"  {span.duration_ms:.1f} ms", "dim"),
        )
        if span.parent_id is not None and span.parent_id not in by_id:
            label.append("  (parent not recorded)", style="yellow")
        child = node.add(label)
        for sub in span.children:
            add(child, sub)

    for root in trace.roots():
        add(tree, root)
    return tree
