"""The end-to-end suite runs the real `relay up` (five services, moto server, PostgreSQL, Redis)
on free ports with a fresh database, and talks to it only through the public API."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx
import pytest

from relay.routing import bus_name, load_routing, queue_name
from relay.stack.config import SERVICES, StackConfig
from relay.stack.topology import artifacts_bucket_name

from .client import PublicApi

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

    def create_key(self, tenant: str) -> str:
        done = subprocess.run(
            [RELAY, "admin", "create-key", "--tenant", tenant],
            env=self.environment,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        lines = done.stdout.splitlines()
        assert len(lines) == 1, f"create-key must print the key alone, got {done.stdout!r}"
        return lines[0]


@pytest.fixture(scope="session")
def stack(
    database_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    aws_credentials: None,  # the tests' own boto3 clients (fault injection) talk to moto
) -> Iterator[RunningStack]:
    """The stack with the scripted model (no provider credentials configured)."""
    with running_stack(database_url, redis_url, tmp_path_factory.mktemp("relay-stack")) as up:
        yield up


@contextlib.contextmanager
def running_stack(
    database_url: str, redis_url: str, state_dir: Path, **extra_env: str
) -> Iterator[RunningStack]:
    """`relay up` as a user runs it, on free ports; ``extra_env`` reaches every service."""
    config = StackConfig.on_free_ports(
        env=f"e2e{uuid.uuid4().hex[:8]}",
        state_dir=state_dir,
        database_url=database_url,
        redis_url=redis_url,
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
            pytest.fail(
                f"relay up exited with {process.returncode}:\n"
                f"{(state / 'relay-up.err').read_text()}\n{stack.log_tail()}"
            )
        # the stack records itself once every service answered /healthz
        if stack.config.stack_file.exists():
            try:
                if httpx.get(f"{stack.gateway_url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    pytest.fail(f"the stack did not come up in time\n{stack.log_tail()}")


@pytest.fixture(scope="session")
def tenant() -> str:
    return f"acme-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
def api_key(stack: RunningStack, tenant: str) -> str:
    return stack.create_key(tenant)


@pytest.fixture(scope="session")
def other_api_key(stack: RunningStack) -> str:
    return stack.create_key(f"globex-{uuid.uuid4().hex[:6]}")


@pytest.fixture
async def api(stack: RunningStack, api_key: str) -> AsyncIterator[PublicApi]:
    client = PublicApi(stack.gateway_url, api_key)
    yield client
    await client.aclose()


@pytest.fixture
async def other_api(stack: RunningStack, other_api_key: str) -> AsyncIterator[PublicApi]:
    client = PublicApi(stack.gateway_url, other_api_key)
    yield client
    await client.aclose()


@pytest.fixture
async def anonymous(stack: RunningStack) -> AsyncIterator[PublicApi]:
    client = PublicApi(stack.gateway_url, None)
    yield client
    await client.aclose()
