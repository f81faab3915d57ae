"""docs/benchmarks.md, rendered from the figures a run collected."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

Cell = str | int | float | None


def cell(value: Cell, digits: int = 1) -> str:
    """A table cell: floats to ``digits`` places, NaN and None as an em dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return value


def ms(seconds: float) -> float:
    return seconds * 1000


def table(headers: Sequence[str], rows: Sequence[Sequence[Cell]], digits: int = 1) -> str:
    """A Markdown table; every row must have one cell per header."""
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"row {row!r} has {len(row)} cells for {len(headers)} headers")
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
        *("| " + " | ".join(cell(c, digits) for c in row) + " |" for row in rows),
    ]
    return "\n".join(lines)


@dataclass
class Section:
    title: str
    method: str  # what was measured, how, and the baseline
    body: list[str] = field(default_factory=list)  # tables and notes, in order
    reading: str = ""  # what limits the figure


@dataclass
class Report:
    machine: dict[str, str]
    commands: list[str]
    started: str
    wall_seconds: float
    sections: list[Section]


def render(report: Report) -> str:
    out = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m relay_devkit.bench`); do not edit by hand. Every"
        " figure stands beside a baseline measured in the same run: the machine is shared and"
        " noisy, so absolute numbers drift between runs and the ratios are what to compare. "
        "The local AWS emulator (moto server) is far slower than AWS, so whole-pipeline "
        "throughput here is the emulator's; the figures below are Relay's own costs.",
        "",
        f"Run started {report.started}; the whole run took {report.wall_seconds:.0f} s.",
        "",
        "## Machine",
        "",
        table(["", ""], [[k, v] for k, v in report.machine.items()]),
        "",
        "## Reproduce",
        "",
        "```sh",
        *report.commands,
        "```",
    ]
    for number, section in enumerate(report.sections, 1):
        out += ["", f"## {number}. {section.title}", "", section.method]
        for part in section.body:
            out += ["", part]
        if section.reading:
            out += ["", f"**Reading.** {section.reading}"]
    return "\n".join(out) + "\n"
