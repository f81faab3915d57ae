"""The demo's live view of one task's timeline, as a person watching it would want it."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from relay_shared.events import TERMINAL_EVENTS

Data = Mapping[str, Any]


@dataclass(frozen=True)
class Row:
    seconds: float
    seq: int
    label: str
    detail: str
    style: str


def tokens(usage: Data | None) -> str:
    usage = usage or {}
    text = f"{usage.get('input_tokens', 0)} in / {usage.get('output_tokens', 0)} out tokens"
    cached = usage.get("cache_read_input_tokens", 0)
    return f"{text}, {cached} cached" if cached else text


def size(n: int) -> str:
    if n < 1000:
        return f"{n} B"
    if n < 1_000_000:
        return f"{n / 1000:.1f} kB"
    return f"{n / 1_000_000:.1f} MB"


Describer = Callable[[Data, int | None], str]


def _submitted(data: Data, _steps: int | None) -> str:
    return f"model {data.get('model', '?')}"


def _started(data: Data, _steps: int | None) -> str:
    resumed = " (resumed after the answer)" if data.get("resumed") else ""
    return f"attempt {data.get('attempt', '?')} on worker {data.get('worker_id', '?')}{resumed}"


def _asked(data: Data, _steps: int | None) -> str:
    return f"{data.get('question', '')} (answer with POST …/input)"


def _answered(data: Data, _steps: int | None) -> str:
    return str(data.get("text", ""))


def _progressed(data: Data, steps: int | None) -> str:
    of = f"/{steps}" if steps else ""
    usage = tokens(data.get("usage"))
    return f"step {data.get('step', '?')}{of}: {data.get('message', '')} ({usage})"


def _published(data: Data, _steps: int | None) -> str:
    return (
        f"{data.get('name', '?')} ({size(int(data.get('size', 0)))}, "
        f"sha256 {str(data.get('sha256', ''))[:12]}…)"
    )


def _succeeded(data: Data, _steps: int | None) -> str:
    return f"{data.get('summary', '')} ({tokens(data.get('usage'))})"


def _failed(data: Data, _steps: int | None) -> str:
    return f"{data.get('code', '?')}: {data.get('message', '')}"


def _cancel(data: Data, _steps: int | None) -> str:
    return str(data.get("reason") or "")


# event type -> (label, style, describe(data, expected steps))
DESCRIBERS: dict[str, tuple[str, str, Describer]] = {
    "task.submitted": ("submitted", "cyan", _submitted),
    "task.started": ("started", "cyan", _started),
    "task.progressed": ("progress", "white", _progressed),
    "task.input_requested": ("question", "bold yellow", _asked),
    "task.input_provided": ("answer", "yellow", _answered),
    "artifact.published": ("artifact", "magenta", _published),
    "task.cancel_requested": ("cancelling", "yellow", _cancel),
    "task.succeeded": ("succeeded", "bold green", _succeeded),
    "task.failed": ("failed", "bold red", _failed),
    "task.cancelled": ("cancelled", "bold yellow", _cancel),
}


@dataclass
class TimelineView:
    """Rows for the events seen so far, and a footer with the status and the time taken."""

    task_id: str
    expected_steps: int | None = None
    started: float = field(default_factory=time.monotonic)
    rows: list[Row] = field(default_factory=list)
    outcome: str | None = None  # the terminal event's type, once it arrived
    finished: float | None = None
    _seen: set[int] = field(default_factory=set)

    def add(self, event: Data) -> None:
        seq = int(event.get("seq", 0))
        if seq in self._seen:  # a reconnect may replay what we already showed
            return
        self._seen.add(seq)
        kind = str(event.get("type", "?"))
        label, style, describe = DESCRIBERS.get(kind, (kind, "dim", lambda _d, _s: ""))
        detail = describe(event.get("data") or {}, self.expected_steps)
        self.rows.append(Row(self.elapsed(), seq, label, detail, style))
        if kind in TERMINAL_EVENTS:
            self.outcome = kind
            self.finished = time.monotonic()

    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def __rich__(self) -> RenderableType:
        table = Table(title=f"Task {self.task_id}", title_justify="left", expand=False)
        table.add_column("time", justify="right", style="dim")
        table.add_column("#", justify="right", style="dim")
        table.add_column("event")
        table.add_column("details", overflow="fold")
        for row in self.rows:
            label = Text(row.label, row.style)
            table.add_row(f"+{row.seconds:.1f}s", str(row.seq), label, row.detail)
        if self.outcome is None:
            footer = Text(f"waiting for events … {self.elapsed():.1f}s", style="dim")
        else:
            outcome, style, _ = DESCRIBERS.get(self.outcome, (self.outcome, "bold", _cancel))
            footer = Text(f"{outcome} in {self.elapsed():.1f}s", style=style)
        return Group(table, footer)
