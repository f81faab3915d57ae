"""`relay demo` (what `make demo` runs) as a user runs it: the whole stack comes up, one task
runs to its artifact, the stack stops. It runs with RELAY_STACK_REDIS_SECURE, so the services'
Redis traffic (tickets, rate limits, live fan-out) goes over TLS with AUTH, as on AWS."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from relay_devkit.testing import fresh_database
from relay_ops.stack.config import SERVICES, StackConfig
from relay_ops.stack.process import RELAY

pytestmark = pytest.mark.timeout(300)


def test_relay_demo_runs_a_task_to_its_artifact_over_a_secure_redis(tmp_path: Path) -> None:
    state_dir, output = tmp_path / "state", tmp_path / "out"
    config = StackConfig.on_free_ports(env=f"demo{uuid.uuid4().hex[:6]}", state_dir=state_dir)
    with fresh_database() as database_url:
        done = subprocess.run(
            [RELAY, "demo", "--output-dir", str(output)],
            env={
                **os.environ,
                "DATABASE_URL": database_url,
                "RELAY_STACK_STATE_DIR": str(state_dir),
                "RELAY_STACK_ENV": config.env,
                "RELAY_STACK_REDIS_SECURE": "true",
                "RELAY_DB_POOL_MAX": "4",
                **{
                    f"RELAY_STACK_{s.upper()}_PORT": str(config.port(s))
                    for s in (*SERVICES, "moto")
                },
            },
            capture_output=True,
            text=True,
            timeout=280,
            check=False,
        )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "(AUTH and TLS)" in done.stdout
    assert "succeeded" in done.stdout
    [artifact] = output.glob("*/report.md")
    assert artifact.stat().st_size > 0
