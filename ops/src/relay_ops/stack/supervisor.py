"""A small asyncio process supervisor for the local stack.

It starts each program in its own process group (so Ctrl-C in the terminal reaches only the
supervisor, which then stops the children in order), forwards every output line to the stack's
logs, restarts a program that exits while nobody asked it to (with backoff), keeps a pid file per
program, and stops everything in reverse start order: the program's stop signal, the grace
period, then SIGKILL for the whole group so no grandchild outlives the stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

TAIL_LINES = 200
# Output lines longer than this are cut rather than breaking the reader.
LINE_LIMIT = 1 << 20


class LogSink(Protocol):
    def line(self, source: str, text: str) -> None:
        """One line a program printed."""

    def notice(self, source: str, text: str) -> None:
        """Something the supervisor did to a program (started, exited, restarting)."""


@dataclass(frozen=True)
class RestartPolicy:
    """Backoff between restarts: ``initial`` doubling up to ``maximum``; a program that stayed
    up for ``reset_after`` seconds starts again from ``initial``."""

    initial: float = 1.0
    maximum: float = 30.0
    reset_after: float = 60.0

    def next_delay(self, previous: float | None, uptime: float) -> float:
        if previous is None or uptime >= self.reset_after:
            return self.initial
        return min(previous * 2, self.maximum)


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    stop_signal: signal.Signals = signal.SIGTERM
    # Run as this user (PostgreSQL refuses to run as root).
    user: str | None = None
    # Awaited after every restart (not the first start), e.g. to rebuild moto's lost state.
    on_restart: Callable[[], Awaitable[None]] | None = None


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exit code {returncode}"


def _signal_group(pid: int, sig: signal.Signals) -> None:
    # Each child leads its own session, so its process group id is its pid.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class _Supervised:
    """One program: its current process, restarts, output and pid file."""

    def __init__(
        self, spec: ProcessSpec, sink: LogSink, run_dir: Path, policy: RestartPolicy
    ) -> None:
        self.spec = spec
        self._sink = sink
        self._pid_file = run_dir / f"{spec.name}.pid"
        self._policy = policy
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._stopping = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._hooks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self._spawn()  # the first start's errors (e.g. no such program) reach the caller
        self._runner = asyncio.create_task(self._watch(), name=f"supervise-{self.spec.name}")

    async def _spawn(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.spec.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(self.spec.env) if self.spec.env is not None else None,
            cwd=self.spec.cwd,
            start_new_session=True,
            user=self.spec.user,
            limit=LINE_LIMIT,
        )
        self.starts += 1
        self._pid_file.write_text(f"{self.process.pid}\n")
        self._sink.notice(self.spec.name, f"started (pid {self.process.pid})")

    async def _watch(self) -> None:
        delay: float | None = None
        while True:
            process = self.process
            assert process is not None
            started = time.monotonic()
            forwarding = asyncio.create_task(self._forward_output(process))
            returncode = await process.wait()
            _signal_group(process.pid, signal.SIGKILL)  # leave no stray grandchildren behind
            try:
                await asyncio.wait_for(forwarding, timeout=5)
            except TimeoutError:  # something outside the group still holds the pipe open
                forwarding.cancel()
            if self._stopping.is_set():
                return
            delay = self._policy.next_delay(delay, time.monotonic() - started)
            self._sink.notice(
                self.spec.name,
                f"exited unexpectedly ({describe_exit(returncode)}); restarting in {delay:g}s",
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            if self._stopping.is_set():
                return
            try:
                await self._spawn()
            except OSError as exc:
                self._sink.notice(self.spec.name, f"could not start: {exc}")
                continue
            if self.spec.on_restart is not None:
                # Beside the watch loop, which must keep reading output while the hook waits.
                hook = asyncio.create_task(self._after_restart(self.spec.on_restart))
                self._hooks.add(hook)
                hook.add_done_callback(self._hooks.discard)

    async def _after_restart(self, hook: Callable[[], Awaitable[None]]) -> None:
        try:
            await hook()
        except Exception as exc:  # the next restart tries again; say why this one failed
            self._sink.notice(self.spec.name, f"after-restart step failed: {exc!r}")

    async def _forward_output(self, process: asyncio.subprocess.Process) -> None:
        stream = process.stdout
        assert stream is not None
        while True:
            try:
                raw = await stream.readline()
            except ValueError:  # over LINE_LIMIT: readline has dropped it; say so, go on
                raw = b"[a line longer than the log limit was left out]"
            if not raw:
                return
            text = raw.decode(errors="replace").rstrip("\r\n")
            self.tail.append(text)
            self._sink.line(self.spec.name, text)

    async def stop(self, grace_seconds: float) -> None:
        self._stopping.set()
        for hook in list(self._hooks):
            hook.cancel()
        process = self.process
        running = process is not None and process.returncode is None
        if running and process is not None:
            _signal_group(process.pid, self.spec.stop_signal)
        if self._runner is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._runner), timeout=grace_seconds)
            except TimeoutError:
                self._sink.notice(
                    self.spec.name, f"did not stop within {grace_seconds:g}s; killing it"
                )
                self.kill()
                await self._runner
        self._pid_file.unlink(missing_ok=True)
        if running and process is not None and process.returncode is not None:
            clean = process.returncode in (0, -self.spec.stop_signal)
            how = "" if clean else f" ({describe_exit(process.returncode)})"
            self._sink.notice(self.spec.name, f"stopped{how}")

    def kill(self) -> None:
        self._stopping.set()
        if self.process is not None:
            _signal_group(self.process.pid, signal.SIGKILL)


class Supervisor:
    def __init__(
        self,
        sink: LogSink,
        run_dir: Path,
        *,
        grace_seconds: float = 20.0,
        policy: RestartPolicy | None = None,
    ) -> None:
        self._sink = sink
        self._run_dir = run_dir
        self._grace = grace_seconds
        self._policy = policy or RestartPolicy()
        self._programs: dict[str, _Supervised] = {}

    async def start(self, spec: ProcessSpec) -> None:
        if spec.name in self._programs:
            raise ValueError(f"{spec.name} is already supervised")
        self._run_dir.mkdir(parents=True, exist_ok=True)
        program = _Supervised(spec, self._sink, self._run_dir, self._policy)
        await program.start()
        self._programs[spec.name] = program

    def names(self) -> list[str]:
        return list(self._programs)

    def pid(self, name: str) -> int | None:
        process = self._programs[name].process
        return process.pid if process is not None and process.returncode is None else None

    def starts(self, name: str) -> int:
        """How many times the program was started: 1 + its restarts."""
        return self._programs[name].starts

    def tail(self, name: str, lines: int = 40) -> list[str]:
        program = self._programs.get(name)
        return list(program.tail)[-lines:] if program else []

    async def stop(self, waves: Sequence[Collection[str]] = ()) -> None:
        """Stop every program: those of each wave together, wave after wave, then the rest one
        at a time, the last started first."""
        named = {name for wave in waves for name in wave}
        for wave in [*waves, *([name] for name in reversed(self._programs) if name not in named)]:
            await asyncio.gather(
                *(self._programs[name].stop(self._grace) for name in wave if name in self._programs)
            )

    def kill_all(self) -> None:
        """SIGKILL everything at once: the way out when an orderly stop is not wanted."""
        for program in self._programs.values():
            program.kill()
