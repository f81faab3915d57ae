"""How a failure is shown: what failed, then the tails of the logs that explain it."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console
from rich.text import Text

from relay_ops.stack.local import LocalStack

TAIL_LINES = 30


def show_failure(console: Console, what: str, stack: LocalStack, services: Iterable[str]) -> None:
    console.print(Text(f"✗ {what}", style="bold red"), soft_wrap=True)
    for name in dict.fromkeys(services):  # in order, once each
        lines = stack.tail(name, TAIL_LINES)
        where = stack.log_path(name)
        if not lines:
            console.print(Text(f"  ({name}: no output; log file {where})", style="dim"))
            continue
        console.print(Text(f"── last lines of {name} ({where}) ──", style="bold"))
        for line in lines:
            console.print(Text(f"  {line}"), soft_wrap=True, highlight=False)
