"""The whole local stack with real PostgreSQL, Redis and moto server. The five services are
stand-in processes (tests/stack/standin_service.py) that answer /healthz and report the
environment the stack gave them, so this suite tests the stack, not the services."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import boto3
import httpx
import psycopg
import pytest
from psycopg import sql

from relay_devkit.testing import DEFAULT_DATABASE_URL, eventually
from relay_ops.routing import bus_name, load_routing, queue_name
from relay_ops.stack.config import SERVICES, StackConfig
from relay_ops.stack.errors import StackError
from relay_ops.stack.local import LocalStack, ServiceProgram, read_stack_file
from relay_ops.stack.roles import role_name
from relay_ops.stack.supervisor import RestartPolicy
from relay_ops.stack.topology import jwks_secret_name, signing_key_secret_name
from relay_shared.internal_auth import key_id, parse_public_keys, public_key_of

pytestmark = pytest.mark.integration

STANDIN = Path(__file__).with_name("standin_service.py")
QUICK = RestartPolicy(initial=0.2, maximum=1, reset_after=60)


def _standins(
    crashing: str | None = None, *, slow: str | None = None, ready_after: float = 0
) -> list[ServiceProgram]:
    def options(name: str) -> list[str]:
        if name == crashing:
            return ["--crash"]
        return ["--ready-after", str(ready_after)] if name == slow else []

    return [
        ServiceProgram(name, (sys.executable, str(STANDIN), name, *options(name)))
        for name in SERVICES
    ]


@pytest.fixture
def fresh_database_url() -> Iterator[str]:
    """A database name nobody created: the stack must create it."""
    admin = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    name = f"relay_stack_{uuid.uuid4().hex[:10]}"
    yield urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def config(state_dir: Path, fresh_database_url: str) -> StackConfig:
    return StackConfig.on_free_ports(
        env=f"st{uuid.uuid4().hex[:8]}",
        state_dir=state_dir,
        database_url=fresh_database_url,
        redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        grace_seconds=5,
        startup_timeout_seconds=60,
    )


def _queues(endpoint: str) -> set[str]:
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    return {url.rsplit("/", 1)[1] for url in sqs.list_queues().get("QueueUrls", [])}


def _buses(endpoint: str) -> set[str]:
    events = boto3.client("events", endpoint_url=endpoint, region_name="us-east-1")
    return {bus["Name"] for bus in events.list_event_buses()["EventBuses"]}


async def test_the_stack_comes_up_wired_survives_crashes_and_stops_clean(
    config: StackConfig, alive: Callable[[int], bool]
) -> None:
    stack = LocalStack(config, programs=_standins(), restart_policy=QUICK)
    async with stack:
        # moto is up with the routing declaration's bus and queues
        expected_queues = {queue_name(config.env, s, k) for s, k in load_routing().queues()}
        assert expected_queues <= _queues(config.moto_endpoint)
        assert bus_name(config.env) in _buses(config.moto_endpoint)
        assert stack.bucket == f"relay-{config.env}-artifacts"

        # the database named in DATABASE_URL did not exist: the stack created it
        assert stack.database is not None
        assert "created database" in stack.database.summary
        psycopg.connect(stack.database.url).close()

        # each service has its port, the shared wiring, and only the gateway can sign
        async with httpx.AsyncClient(timeout=5) as http:
            wiring = {
                name: (await http.get(f"{url}/wiring")).json() for name, url in stack.urls.items()
            }
        for name, env in wiring.items():
            assert env["RELAY_HTTP_PORT"] == str(config.port(name))
            assert env["RELAY_ENV"] == config.env
            # its own role (relay_ops.stack.roles), on the stack's database
            given, admin = urlsplit(env["DATABASE_URL"]), urlsplit(stack.database.url)
            assert (given.hostname, given.port, given.path) == (
                admin.hostname,
                admin.port,
                admin.path,
            )
            assert given.username == role_name(admin.path.lstrip("/"), name)
            assert env["RELAY_AWS_ENDPOINT_URL"] == config.moto_endpoint
            assert env["RELAY_ARTIFACTS_BUCKET"] == stack.bucket
            assert env["AWS_REGION"] == "us-east-1"
            # the keys as a deployment keeps them: secrets the services read (and re-read)
            assert env["has_public_key"] is False
            assert env["RELAY_INTERNAL_AUTH_JWKS_SECRET_ID"] == jwks_secret_name(config.env)
            assert env["has_private_key"] is (name == "gateway")
            assert bool(env["RELAY_INTERNAL_AUTH_PRIVATE_KEY_SECRET_ID"]) is (name == "gateway")
            # only the notifier holds webhook secrets: it alone gets the keys sealing them
            assert env["has_webhooks_keys"] is (name == "notifier")
        assert wiring["notifier"]["RELAY_WEBHOOKS_ALLOW_PRIVATE"] == "true"
        # the JWKS the services trust holds exactly the public half of the gateway's key
        secrets = boto3.client(
            "secretsmanager", endpoint_url=config.moto_endpoint, region_name=config.aws_region
        )
        private = secrets.get_secret_value(SecretId=signing_key_secret_name(config.env))
        trusted = secrets.get_secret_value(SecretId=jwks_secret_name(config.env))
        assert set(parse_public_keys(trusted["SecretString"])) == {
            key_id(public_key_of(private["SecretString"]))
        }
        # the keys kept in the state dir, so a later start still opens what this one sealed
        notifier_keys = stack.service_environment("notifier")["RELAY_WEBHOOKS_ENCRYPTION_KEYS"]
        assert notifier_keys == config.webhooks_keys_file.read_text().strip()
        assert wiring["gateway"]["RELAY_TASKS_URL"] == config.url("tasks")
        assert wiring["gateway"]["RELAY_NOTIFIER_URL"] == config.url("notifier")
        assert wiring["tasks"]["RELAY_TASKS_URL"] is None

        # another `relay up` on the same state dir is refused before it starts anything
        record = read_stack_file(config.stack_file)
        assert record is not None
        assert record["pid"] == os.getpid()
        with pytest.raises(StackError, match="Another Relay stack"):
            await LocalStack(config).start()

        # fault injection through the pid files: a service comes back and answers again
        gateway_pid = int(stack.pid_file("gateway").read_text())
        os.kill(gateway_pid, signal.SIGKILL)

        async def gateway_health() -> int:
            try:
                async with httpx.AsyncClient(timeout=2) as http:
                    return (await http.get(f"{stack.gateway_url}/healthz")).status_code
            except httpx.HTTPError:
                return 0

        await eventually(gateway_health, until=lambda status: status == 200, within=30)
        assert int(stack.pid_file("gateway").read_text()) != gateway_pid

        # moto loses everything when it restarts: the topology is built again
        os.kill(int(stack.pid_file("moto").read_text()), signal.SIGKILL)

        async def queues_after_restart() -> set[str]:
            try:
                return _queues(config.moto_endpoint)
            except Exception:
                return set()

        await eventually(queues_after_restart, until=lambda q: expected_queues <= q, within=45)
        await eventually(
            lambda: _read(stack.log_path("moto")),
            until=lambda log: "topology bootstrapped again" in log,
            within=30,
        )
        pids = [int(stack.pid_file(name).read_text()) for name in [*SERVICES, "moto"]]

    assert [pid for pid in pids if alive(pid)] == []
    assert list(config.run_dir.glob("*.pid")) == []
    assert not config.stack_file.exists()


async def test_a_service_that_keeps_crashing_fails_the_start_and_nothing_is_left_running(
    config: StackConfig, alive: Callable[[int], bool]
) -> None:
    stack = LocalStack(config, programs=_standins(crashing="notifier"), restart_policy=QUICK)
    with pytest.raises(StackError, match="notifier keeps exiting") as raised:
        await stack.start()
    assert raised.value.services == ("notifier",)
    assert "failing on purpose" in "\n".join(stack.tail("notifier"))
    assert list(config.run_dir.glob("*.pid")) == []
    with pytest.raises(httpx.HTTPError):
        async with httpx.AsyncClient(timeout=2) as http:
            await http.get(f"{config.moto_endpoint}/moto-api/data.json")
    assert not config.stack_file.exists()


async def test_the_stack_is_up_only_once_every_service_is_ready_not_just_alive(
    config: StackConfig,
) -> None:
    # tasks answers /healthz at once but is "waiting for PostgreSQL" for a while
    stack = LocalStack(
        config, programs=_standins(slow="tasks", ready_after=3), restart_policy=QUICK
    )
    async with stack, httpx.AsyncClient(timeout=2) as http:
        for url in stack.urls.values():
            assert (await http.get(f"{url}/readyz")).status_code == 200
    # and it said what it was waiting for
    log = await _read(stack.log_path("tasks"))
    assert "not ready yet: starting (startup: waiting for PostgreSQL)" in log


async def _read(path: Path) -> str:
    return await asyncio.to_thread(lambda: path.read_text() if path.exists() else "")
