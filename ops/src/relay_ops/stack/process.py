"""`relay up` as a separate process, the way a user runs it: for the end-to-end and fault suites.

The stack runs on free ports with its own state directory; the caller gets its addresses, can
make API keys with `relay admin`, and can signal the services by their pid files.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx

from relay_ops.routing import bus_name, load_routing, queue_name
from relay_ops.stack.config import SERVICES, StackConfig
from relay_ops.stack.environment import gateway_lambda_environment
from relay_ops.stack.topology import artifacts_bucket_name

RELAY = str(Path(sys.executable).parent / "relay")


@dataclass(frozen=True)
class RunningStack:
    config: StackConfig
    environment: dict[str, str]

    @property
    def gateway_url(self) -> str:
        return self.config.gateway_url

    @property
    def moto_endpoint(self) -> str:
        return self.config.moto_endpoint

    @property
    def bus(self) -> str:
        return bus_name(self.config.env)

    @property
    def bucket(self) -> str:
        return artifacts_bucket_name(self.config.env)

    def queue_urls(self) -> list[str]:
        sqs = boto3.client("sqs", endpoint_url=self.moto_endpoint, region_name="us-east-1")
        return [
            sqs.get_queue_url(QueueName=queue_name(self.config.env, s, kind))["QueueUrl"]
            for s, kind in load_routing().queues()
        ]

    def log_tail(self, lines: int = 40) -> str:
        out = []
        for service in SERVICES:
            path = self.config.log_dir / f"{service}.log"
            if path.exists():
                out += [f"--- {service}", *path.read_text().splitlines()[-lines:]]
        return "\n".join(out)

    def pid(self, program: str) -> int:
        """The current pid of a supervised program (a service, moto, ...)."""
        return int((self.config.run_dir / f"{program}.pid").read_text())

    def kill(self, program: str, sig: signal.Signals = signal.SIGKILL) -> int:
        """Signal a program's process; returns the pid signalled. The supervisor restarts a
        program that dies without being asked to."""
        pid = self.pid(program)
        os.kill(pid, sig)
        return pid

    def wait_restarted(self, program: str, old_pid: int, *, within: float = 60) -> int:
        """Block until the supervisor has started ``program`` again and it is ready."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            with contextlib.suppress(FileNotFoundError, ValueError):
                pid = self.pid(program)
                if pid != old_pid and self._healthy(program):
                    return pid
            time.sleep(0.1)
        raise TimeoutError(f"{program} did not come back within {within}s\n{self.log_tail()}")

    def _healthy(self, program: str) -> bool:
        """Back means ready (it rebuilt itself), not only that the process answers."""
        if program not in SERVICES:
            return True
        try:
            url = f"{self.config.url(program)}/readyz"
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def gateway_lambda_environment(self) -> dict[str, str]:
        """For the gateway's Lambda entry point run in-process against this stack."""
        return gateway_lambda_environment(
            self.config,
            database_url=self.environment["DATABASE_URL"],
            redis_url=self.environment["REDIS_URL"],
            base=self.environment,
        )

    def admin(self, *args: str) -> str:
        """`relay admin ARGS` against this stack; its stdout (a failure is an AssertionError
        with the command's stderr)."""
        done = subprocess.run(
            [RELAY, "admin", *args],
            env=self.environment,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert done.returncode == 0, f"relay admin {args[0]} failed: {done.stderr.strip()}"
        return done.stdout

    def unthrottle(self, tenant: str) -> None:
        """Rate limits far above what a load test or a fault run asks, and no active-task
        quota, for ``tenant``: these measure the platform under load, not the limiter
        (tests/e2e/test_rate_limits.py)."""
        self.admin(
            "set-limits",
            "--tenant",
            tenant,
            "--requests-per-second",
            "100000",
            "--requests-burst",
            "100000",
            "--submits-per-second",
            "100000",
            "--submits-burst",
            "100000",
            "--active-tasks",
            "0",
        )

    def create_key(self, tenant: str) -> str:
        stdout = self.admin("create-key", "--tenant", tenant)
        lines = stdout.splitlines()
        assert len(lines) == 1, f"create-key must print the key alone, got {stdout!r}"
        return lines[0]


@contextlib.contextmanager
def running_stack(
    database_url: str,
    redis_url: str,
    state_dir: Path,
    *,
    env: str | None = None,
    aws_endpoint_url: str | None = None,
    **extra_env: str,
) -> Iterator[RunningStack]:
    """`relay up` as a user runs it, on free ports; ``extra_env`` reaches every service.

    ``env``: the deployment name (default: a fresh one). ``aws_endpoint_url``: a moto server
    that already holds the topology (Terraform's envs/local): the stack starts no moto and
    does not bootstrap, it only checks the topology is there.

    Pools are kept small (RELAY_DB_POOL_MAX), so that two test stacks and the tests' own
    connections stay well inside PostgreSQL's default 100 connections."""
    config = StackConfig.on_free_ports(
        env=env or f"e2e{uuid.uuid4().hex[:8]}",
        state_dir=state_dir,
        database_url=database_url,
        redis_url=redis_url,
        aws_endpoint_url=aws_endpoint_url,
        bootstrap=aws_endpoint_url is None,
    )
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "RELAY_STACK_STATE_DIR": str(state_dir),
        "RELAY_STACK_ENV": config.env,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        **{f"RELAY_STACK_{s.upper()}_PORT": str(config.port(s)) for s in (*SERVICES, "moto")},
        "RELAY_DB_POOL_MAX": "4",
        **(
            {"RELAY_STACK_AWS_ENDPOINT_URL": aws_endpoint_url, "RELAY_STACK_BOOTSTRAP": "false"}
            if aws_endpoint_url
            else {}
        ),
        **extra_env,
    }
    process = subprocess.Popen(
        [RELAY, "up", "--log-files"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=(state_dir / "relay-up.err").open("wb"),
        start_new_session=True,
    )
    running = RunningStack(config, environment)
    try:
        _wait_until_ready(process, running, state_dir)
        yield running
    finally:
        process.send_signal(signal.SIGINT)  # what Ctrl-C does
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise


def _wait_until_ready(process: subprocess.Popen[bytes], stack: RunningStack, state: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"relay up exited with {process.returncode}:\n"
                f"{(state / 'relay-up.err').read_text()}\n{stack.log_tail()}"
            )
        # the stack records itself once every service is ready (/readyz)
        if stack.config.stack_file.exists():
            try:
                if httpx.get(f"{stack.gateway_url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    raise TimeoutError(f"the stack did not come up in time\n{stack.log_tail()}")
