"""A service as a real process (``relay_shared.http.serve``): up at once while PostgreSQL is
unreachable, stopped promptly by SIGTERM while it waits, exit status 1 when start-up fails for
good."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from relay_ops.stack.moto import free_port

pytestmark = pytest.mark.integration

SERVICE = """
import sys
from contextlib import asynccontextmanager
from relay_shared.http import create_service_app, serve
from relay_shared.settings import ServiceSettings
from relay_shared.migrations import KIT_OUTBOX

settings = ServiceSettings(service_name="tasks", http_port=int(sys.argv[2]),
                           database_url=sys.argv[3], startup_max_backoff_seconds=0.5)

@asynccontextmanager
async def start(app, runtime):
    if sys.argv[1] == "broken":
        raise RuntimeError("RELAY_SOMETHING is wrong")
    await runtime.database(KIT_OUTBOX)
    yield

serve(lambda: create_service_app(settings, start=start), settings)
"""


def _start(tmp_path: Path, mode: str, port: int, database_url: str) -> subprocess.Popen[str]:
    script = tmp_path / "service.py"
    script.write_text(SERVICE)
    return subprocess.Popen(
        [sys.executable, str(script), mode, str(port), database_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _answers(url: str, within: float = 15.0) -> httpx.Response:
    deadline = time.monotonic() + within
    while True:
        try:
            return httpx.get(url, timeout=1)
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_unreachable_postgres_does_not_stop_the_process_and_sigterm_does(tmp_path: Path) -> None:
    port = free_port()
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/relay"  # nothing listens there
    process = _start(tmp_path, "waiting", port, closed)
    try:
        assert _answers(f"http://127.0.0.1:{port}/healthz").status_code == 200
        time.sleep(2)  # several start-up attempts later, still up
        assert process.poll() is None
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).json()
        assert ready["status"] == "starting"
        process.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal once it has shut down: a graceful stop ends "by SIGTERM"
        assert process.wait(timeout=10) in {0, -signal.SIGTERM}
    finally:
        process.kill()
        output = process.communicate()[0]
    assert "start-up: waiting for PostgreSQL" in output
    assert "tasks stopped before start-up finished" in output


def test_a_start_up_that_fails_for_good_exits_with_status_1(tmp_path: Path) -> None:
    port = free_port()
    process = _start(tmp_path, "broken", port, "postgresql://postgres@127.0.0.1:1/relay")
    try:
        assert process.wait(timeout=20) == 1
    finally:
        process.kill()
        output = process.communicate()[0]
    assert "start-up failed: RuntimeError: RELAY_SOMETHING is wrong" in output
