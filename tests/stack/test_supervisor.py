"""The supervisor with real child processes: restarts, pid files, output, and a stop that
leaves nothing running."""

from __future__ import annotations

import io
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from rich.console import Console

from relay_devkit.testing import eventually
from relay_ops.stack.logs import StackLogs
from relay_ops.stack.supervisor import ProcessSpec, RestartPolicy, Supervisor

pytestmark = pytest.mark.integration

T = TypeVar("T")
FAST = RestartPolicy(initial=0.1, maximum=0.4, reset_after=60)
SLEEPER = "import time\nprint('up', flush=True)\ntime.sleep(600)"


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _supervisor(
    tmp_path: Path, *, grace: float = 5.0, console: Console | None = None
) -> Supervisor:
    logs = StackLogs(tmp_path / "logs", console=console)
    return Supervisor(logs, tmp_path / "run", grace_seconds=grace, policy=FAST)


def test_backoff_starts_at_one_second_doubles_to_thirty_and_resets_after_a_minute_up() -> None:
    policy = RestartPolicy()
    delays = []
    delay = None
    for _ in range(7):
        delay = policy.next_delay(delay, uptime=2)
        delays.append(delay)
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    assert policy.next_delay(30, uptime=59) == 30
    assert policy.next_delay(30, uptime=60) == 1


async def test_a_child_that_exits_on_its_own_is_started_again(tmp_path: Path) -> None:
    supervisor = _supervisor(tmp_path)
    await supervisor.start(ProcessSpec("flaky", _python("print('boom'); raise SystemExit(3)")))
    log_file = tmp_path / "logs" / "flaky.log"
    try:
        # Wait for three runs to have ended, not three starts: a start is counted before the
        # child has printed anything, and stopping it then would cut its run short.
        await eventually(
            lambda: _async(log_file.read_text() if log_file.exists() else ""),
            until=lambda text: text.count("exited unexpectedly") >= 3,
        )
    finally:
        await supervisor.stop()
    assert supervisor.starts("flaky") >= 3
    log = log_file.read_text()
    assert "exited unexpectedly (exit code 3); restarting in 0.1s" in log
    assert "restarting in 0.2s" in log  # the backoff doubled
    assert log.count("boom") >= 3


async def test_a_child_killed_through_its_pid_file_comes_back(
    tmp_path: Path, alive: Callable[[int], bool]
) -> None:
    supervisor = _supervisor(tmp_path)
    await supervisor.start(ProcessSpec("worker", _python(SLEEPER)))
    pid_file = tmp_path / "run" / "worker.pid"
    try:
        first = int(pid_file.read_text())
        assert alive(first)
        os.kill(first, signal.SIGKILL)

        async def current_pid() -> int:
            return int(pid_file.read_text())

        second = await eventually(current_pid, until=lambda pid: pid != first)
        assert alive(second)
        assert not alive(first)
        assert supervisor.pid("worker") == second
    finally:
        await supervisor.stop()
    assert not pid_file.exists()
    log = (tmp_path / "logs" / "worker.log").read_text()
    assert "killed by SIGKILL" in log


async def test_stop_leaves_no_child_or_grandchild_running_and_goes_in_reverse_order(
    tmp_path: Path, alive: Callable[[int], bool]
) -> None:
    grandchild_file = tmp_path / "grandchild.pid"
    spawns_grandchild = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        f"open({str(grandchild_file)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(600)"
    )
    ignores_sigterm = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ignoring SIGTERM', flush=True)\n"
        "time.sleep(600)"
    )
    supervisor = _supervisor(tmp_path, grace=1.0)
    await supervisor.start(ProcessSpec("first", _python(SLEEPER)))
    await supervisor.start(ProcessSpec("parent", _python(spawns_grandchild)))
    await supervisor.start(ProcessSpec("stubborn", _python(ignores_sigterm)))
    pids = [supervisor.pid(name) for name in ("first", "parent", "stubborn")]
    await eventually(lambda: _async(grandchild_file.exists()))
    await eventually(lambda: _async(supervisor.tail("stubborn")))
    grandchild = int(grandchild_file.read_text())
    assert all(pid is not None and alive(pid) for pid in pids)
    assert alive(grandchild)

    await supervisor.stop()

    assert [pid for pid in pids if pid is not None and alive(pid)] == []
    assert not alive(grandchild)
    assert list((tmp_path / "run").glob("*.pid")) == []
    stops = [
        line.split(":")[0]
        for line in (tmp_path / "logs" / "supervisor.log").read_text().splitlines()
        if "stopped" in line or "did not stop" in line
    ]
    assert stops[:1] == ["stubborn"]  # the last started goes first
    assert stops.index("parent") < stops.index("first")
    assert "did not stop within 1s; killing it" in (tmp_path / "logs" / "stubborn.log").read_text()


async def test_a_wave_stops_together_before_the_next_and_the_rest_follow_in_reverse(
    tmp_path: Path,
) -> None:
    """Each program takes 1 s to stop and says when it got SIGTERM and when it was done: the two
    of one wave stop at the same time, after the first wave and before the unnamed rest."""
    slow_stop = (
        "import signal, sys, time\n"
        "def stop(*_):\n"
        "    print('term', time.time(), flush=True)\n"
        "    time.sleep(1)\n"
        "    print('done', time.time(), flush=True)\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "print('up', flush=True)\n"
        "time.sleep(600)"
    )
    names = ("db", "tasks", "agent", "gateway")
    supervisor = _supervisor(tmp_path, grace=10.0)
    for name in names:
        await supervisor.start(ProcessSpec(name, _python(slow_stop)))
    for name in names:
        await eventually(lambda name=name: _async(supervisor.tail(name)))

    await supervisor.stop([("gateway",), ("tasks", "agent")])

    def when(name: str, what: str) -> float:
        said = (line.split() for line in supervisor.tail(name))
        return next(float(words[1]) for words in said if words[0] == what)

    assert when("gateway", "done") <= min(when("tasks", "term"), when("agent", "term"))
    assert max(when("tasks", "term"), when("agent", "term")) < min(
        when("tasks", "done"), when("agent", "done")
    ), "the wave of two stopped one after the other"
    assert max(when("tasks", "done"), when("agent", "done")) <= when("db", "term")


async def test_output_is_prefixed_with_the_program_name_and_kept_in_its_file(
    tmp_path: Path,
) -> None:
    out = io.StringIO()
    supervisor = _supervisor(tmp_path, console=Console(file=out, width=200))
    await supervisor.start(ProcessSpec("echoer", _python("print('hello from the child')")))
    try:
        await eventually(lambda: _async(out.getvalue()), until=lambda s: "hello" in s)
    finally:
        await supervisor.stop()
    assert "echoer    | hello from the child" in out.getvalue().splitlines()
    assert "hello from the child" in (tmp_path / "logs" / "echoer.log").read_text()


async def _async(value: T) -> T:
    """A value as an awaitable, for ``eventually`` probes that read local state."""
    return value
