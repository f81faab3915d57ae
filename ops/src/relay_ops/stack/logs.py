"""Where the stack's output goes: always one file per program under the state dir, and, when a
console is given, each line on it too, prefixed with the program's name in its own colour."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.text import Text

PALETTE = ("cyan", "magenta", "green", "yellow", "blue", "bright_red", "bright_cyan", "white")
SUPERVISOR = "supervisor"


class StackLogs:
    """A ``LogSink`` for the supervisor.

    ``quiet`` programs (moto's request log, the databases) go to their files only; what the
    supervisor does to them (start, crash, restart) is still shown.
    """

    def __init__(
        self,
        log_dir: Path,
        *,
        console: Console | None = None,
        quiet: frozenset[str] = frozenset(),
    ) -> None:
        self.log_dir = log_dir
        self._console = console
        self._quiet = quiet
        self._files: dict[str, TextIO] = {}
        self._colours: dict[str, str] = {}
        self._width = 9

    def path(self, source: str) -> Path:
        return self.log_dir / f"{source}.log"

    def line(self, source: str, text: str) -> None:
        self._write(source, text)
        if source not in self._quiet:
            self._echo(source, Text(text))

    def notice(self, source: str, text: str) -> None:
        message = f"[{SUPERVISOR}] {text}"
        self._write(source, message)
        self._write(SUPERVISOR, f"{source}: {text}")
        self._echo(source, Text(message, style="bold"))

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()

    def _write(self, source: str, text: str) -> None:
        handle = self._files.get(source)
        if handle is None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            handle = self._files[source] = self.path(source).open("a", buffering=1)
        handle.write(text + "\n")

    def _echo(self, source: str, text: Text) -> None:
        if self._console is None:
            return
        colour = self._colours.setdefault(source, PALETTE[len(self._colours) % len(PALETTE)])
        self._width = max(self._width, len(source))
        prefix = Text(f"{source:<{self._width}} | ", style=colour)
        self._console.print(prefix + text, soft_wrap=True, highlight=False)
