"""`relay up` refuses a taken port before starting anything; `relay bootstrap` builds the
topology on a moto server; `relay admin` is the gateway's command group."""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from typer.testing import CliRunner

from relay_ops.cli import app
from relay_ops.routing import bus_name, load_routing, queue_name
from relay_ops.stack.config import StackConfig
from relay_ops.stack.errors import StackError
from relay_ops.stack.local import LocalStack

pytestmark = pytest.mark.integration


@pytest.fixture
def listener() -> Iterator[int]:
    """A port something is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


async def test_a_taken_port_stops_the_stack_before_anything_starts(
    listener: int, state_dir: Path
) -> None:
    config = StackConfig.on_free_ports(state_dir=state_dir, notifier_port=listener)
    with pytest.raises(StackError) as raised:
        await LocalStack(config).start()
    message = str(raised.value)
    assert f"127.0.0.1:{listener} (notifier)" in message
    assert "RELAY_STACK_NOTIFIER_PORT" in message
    assert "gateway" not in message  # only the taken one is named
    assert not (state_dir / "run").exists()  # nothing was started


def test_relay_up_with_a_taken_port_exits_non_zero_with_the_reason(
    listener: int, state_dir: Path
) -> None:
    result = CliRunner().invoke(
        app,
        ["up", "--log-files"],
        env={"RELAY_STACK_GATEWAY_PORT": str(listener), "RELAY_STACK_STATE_DIR": str(state_dir)},
    )
    assert result.exit_code == 1
    assert f"127.0.0.1:{listener} (gateway)" in result.output
    assert "RELAY_STACK_GATEWAY_PORT" in result.output


def test_relay_bootstrap_builds_the_topology_and_prints_it(moto_endpoint: str) -> None:
    env = f"cli{uuid.uuid4().hex[:8]}"
    result = CliRunner().invoke(app, ["bootstrap", "--endpoint-url", moto_endpoint, "--env", env])
    assert result.exit_code == 0, result.output
    assert f"relay-{env}-artifacts" in result.output
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    for service, kind in load_routing().queues():
        assert queue_name(env, service, kind) in result.output
        sqs.get_queue_url(QueueName=queue_name(env, service, kind))  # raises if missing
    events = boto3.client("events", endpoint_url=moto_endpoint, region_name="us-east-1")
    assert events.describe_event_bus(Name=bus_name(env))["Name"] == bus_name(env)


def test_relay_bootstrap_against_nothing_fails_with_the_endpoint_named() -> None:
    result = CliRunner().invoke(
        app,
        ["bootstrap", "--endpoint-url", "http://127.0.0.1:1"],
        env={"AWS_MAX_ATTEMPTS": "1"},  # no retries against a closed port
    )
    assert result.exit_code == 1
    assert "bootstrap failed at http://127.0.0.1:1" in result.output


def test_relay_admin_is_the_gateways_key_commands() -> None:
    result = CliRunner().invoke(app, ["admin", "--help"])
    assert result.exit_code == 0
    assert "create-key" in result.output


@pytest.fixture
def restored_environ() -> Iterator[None]:
    """The CLI fills os.environ in; put it back exactly as it was."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.mark.usefixtures("restored_environ")
def test_relay_admin_reaches_the_running_stack_unless_told_otherwise(state_dir: Path) -> None:
    for name in ("DATABASE_URL", "RELAY_ENV", "RELAY_AWS_ENDPOINT_URL", "RELAY_ARTIFACTS_BUCKET"):
        os.environ.pop(name, None)
    os.environ["RELAY_STACK_STATE_DIR"] = str(state_dir)
    os.environ["REDIS_URL"] = "redis://mine:6379/0"
    record = {
        "pid": os.getpid(),  # a live process: the stack counts as running
        "env": "local",
        "database_url": "postgresql://postgres@127.0.0.1:40001/relay",
        "redis_url": "redis://127.0.0.1:40002/0",
        "moto_endpoint": "http://127.0.0.1:40003",
        "bucket": "relay-local-artifacts",
    }
    (state_dir / "run").mkdir()
    (state_dir / "run" / "stack.json").write_text(json.dumps(record))

    assert CliRunner().invoke(app, ["admin", "--help"]).exit_code == 0

    assert os.environ["DATABASE_URL"] == record["database_url"]
    assert os.environ["RELAY_AWS_ENDPOINT_URL"] == record["moto_endpoint"]
    assert os.environ["REDIS_URL"] == "redis://mine:6379/0"  # what the user set wins
