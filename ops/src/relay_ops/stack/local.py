"""The whole local stack as one object: ``async with LocalStack(config) as stack: ...``.

Start: refuse if the ports or the state dir are taken; PostgreSQL and Redis (existing or
throwaway); moto and the topology; the five services, each with its own environment; then wait
until every service answers /readyz (up, and its dependencies reachable). Stop: everything, in
reverse order. `relay up`, `relay demo` and the end-to-end tests are thin layers over this.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import psycopg
from rich.console import Console

from relay_ops.routing import bus_name
from relay_ops.stack.config import SERVICES, StackConfig
from relay_ops.stack.environment import DUMMY_AWS_CREDENTIALS, Wiring, service_environment
from relay_ops.stack.errors import StackError
from relay_ops.stack.keys import webhooks_encryption_keys
from relay_ops.stack.logs import StackLogs
from relay_ops.stack.moto import free_port, moto_door_command, wait_until_up
from relay_ops.stack.moto_door import OPEN as MOTO_OPEN
from relay_ops.stack.ports import ensure_ports_free
from relay_ops.stack.postgres import provide_postgres
from relay_ops.stack.redis_server import provide_redis
from relay_ops.stack.roles import make_service_roles
from relay_ops.stack.stores import Provisioned
from relay_ops.stack.supervisor import ProcessSpec, RestartPolicy, Supervisor
from relay_ops.stack.topology import (
    Topology,
    TopologyMissing,
    bootstrap,
    existing_topology,
    seen_from,
    store_signing_key,
)
from relay_shared.internal_auth import generate_keypair

MOTO = "moto"
# The order of a stop: the gateway first (no new requests), then the other services together
# (none needs another to stop cleanly), then one at a time what they use while they stop: moto,
# Redis, PostgreSQL.
STOP_WAVES = (("gateway",), tuple(name for name in SERVICES if name != "gateway"))
# Their own output is noise at the console (moto logs every request); it stays in their files.
QUIET = frozenset({MOTO, "postgres", "redis"})
# A service started this often before it was ready keeps crashing: say so, don't wait.
CRASH_LOOP_STARTS = 3


@dataclass(frozen=True)
class ServiceProgram:
    """How to run one service; tests swap in stand-ins through LocalStack(programs=...)."""

    name: str
    argv: tuple[str, ...]


def default_programs() -> tuple[ServiceProgram, ...]:
    return tuple(ServiceProgram(name, (sys.executable, "-m", name)) for name in SERVICES)


class LocalStack:
    def __init__(
        self,
        config: StackConfig | None = None,
        *,
        console: Console | None = None,
        programs: Sequence[ServiceProgram] | None = None,
        restart_policy: RestartPolicy | None = None,
    ) -> None:
        """``console``: stream the logs there too; without it they go to files only."""
        self.config = config or StackConfig()
        self.programs = tuple(programs) if programs is not None else default_programs()
        self.logs = StackLogs(self.config.log_dir, console=console, quiet=QUIET)
        self.supervisor = Supervisor(
            self.logs,
            self.config.run_dir,
            grace_seconds=self.config.grace_seconds,
            policy=restart_policy
            or RestartPolicy(
                initial=self.config.restart_initial_seconds,
                maximum=self.config.restart_max_seconds,
                reset_after=self.config.restart_reset_after_seconds,
            ),
        )
        self.database: Provisioned | None = None
        self.redis: Provisioned | None = None
        self.topology: Topology | None = None
        # the private port of the moto we run (relay_ops.stack.moto_door), None for another's
        self._moto_door: int | None = None
        self._wiring: Wiring | None = None
        self._signing_key = ""  # the gateway's, made at start; also kept in moto's secrets
        self._started = False

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- what callers use -----------------------------------------------------------------

    @property
    def gateway_url(self) -> str:
        return self.config.gateway_url

    @property
    def urls(self) -> dict[str, str]:
        return {program.name: self.config.url(program.name) for program in self.programs}

    @property
    def moto_endpoint(self) -> str:
        return self.config.moto_endpoint

    @property
    def bus(self) -> str:
        return bus_name(self.config.env)

    @property
    def bucket(self) -> str:
        return self._topology().bucket

    def queue_urls(self) -> list[str]:
        """Every service queue (not the DLQs)."""
        return list(self._topology().queue_urls.values())

    def _topology(self) -> Topology:
        if self.topology is None:
            raise RuntimeError("the stack is not started")
        return self.topology

    def log_path(self, name: str) -> Path:
        return self.logs.path(name)

    def pid_file(self, name: str) -> Path:
        return self.config.run_dir / f"{name}.pid"

    def tail(self, name: str, lines: int = 40) -> list[str]:
        return self.supervisor.tail(name, lines)

    def service_environment(self, service: str) -> dict[str, str]:
        """The environment ``service`` runs with (e.g. for `relay admin` against this stack)."""
        if self._wiring is None:
            raise RuntimeError("the stack is not started")
        return service_environment(service, self._wiring)

    # --- start and stop -------------------------------------------------------------------

    async def start(self) -> None:
        config = self.config
        self._refuse_if_running()
        ensure_ports_free(config)
        config.run_dir.mkdir(parents=True, exist_ok=True)
        # Kept across starts (the database may keep what they sealed); a bad file stops us here.
        webhooks_keys = webhooks_encryption_keys(config.webhooks_keys_file)
        self._started = True
        try:
            self.database = await provide_postgres(
                config.database_url.get_secret_value(),
                state_dir=config.state_dir,
                supervisor=self.supervisor,
            )
            self.redis = await provide_redis(
                config.redis_url.get_secret_value(),
                state_dir=config.state_dir,
                supervisor=self.supervisor,
                secure=config.redis_secure,
            )
            service_database_urls = await self._service_roles(self.database.url)
            private_key, _ = generate_keypair()
            self._signing_key = private_key
            topology = await self._start_moto()
            self._wiring = Wiring(
                config=config,
                database_url=self.database.url,
                redis_url=self.redis.url,
                bucket=topology.bucket,
                private_key=private_key,
                webhooks_encryption_keys=webhooks_keys,
                service_database_urls=service_database_urls,
            )
            for program in self.programs:
                await self.supervisor.start(
                    ProcessSpec(
                        program.name,
                        program.argv,
                        env=service_environment(program.name, self._wiring),
                    )
                )
            await self._wait_ready()
            self._write_stack_file()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        try:
            await self.supervisor.stop(STOP_WAVES)
        finally:
            self.config.stack_file.unlink(missing_ok=True)
            self.logs.close()

    def kill(self) -> None:
        """SIGKILL every process now (a second Ctrl-C); stop() afterwards only tidies up."""
        self.supervisor.kill_all()

    # --- the pieces -----------------------------------------------------------------------

    def _refuse_if_running(self) -> None:
        running = read_stack_file(self.config.stack_file)
        if running is None:
            return
        raise StackError(
            f"Another Relay stack (pid {running['pid']}) is running with the state dir "
            f"{self.config.state_dir}.\nStop it first (Ctrl-C where it runs), or give this one "
            "its own RELAY_STACK_STATE_DIR and ports."
        )

    async def _start_moto(self) -> Topology:
        # The topology bootstrap's boto3 clients need some credentials; moto takes any.
        for name, value in DUMMY_AWS_CREDENTIALS.items():
            os.environ.setdefault(name, value)
        if not self.config.runs_moto:
            return await self._bootstrap()
        # Ours opens its public port once the topology is built, after every (re)start.
        self._moto_door = free_port()
        await self.supervisor.start(
            ProcessSpec(
                MOTO,
                moto_door_command(self.config.moto_port, self.config.host, self._moto_door),
                on_restart=self._bootstrap_again,
            )
        )
        return await self._bootstrap()

    async def _bootstrap(self) -> Topology:
        config = self.config
        public = config.moto_endpoint
        door = self._moto_door
        endpoint = public if door is None else f"http://127.0.0.1:{door}"
        try:
            await asyncio.to_thread(wait_until_up, endpoint, timeout=60)
        except TimeoutError as exc:
            raise StackError(str(exc), services=(MOTO,)) from exc
        try:
            if config.bootstrap:
                topology = await asyncio.to_thread(
                    bootstrap,
                    config.env,
                    endpoint_url=endpoint,
                    region=config.aws_region,
                    console_origins=config.console_origins,
                )
            else:
                topology = await asyncio.to_thread(
                    existing_topology, config.env, endpoint_url=endpoint, region=config.aws_region
                )
        except TopologyMissing as exc:
            raise StackError(str(exc), services=(MOTO,)) from exc
        await asyncio.to_thread(
            store_signing_key,
            config.env,
            self._signing_key,
            endpoint_url=endpoint,
            region=config.aws_region,
        )
        if door is not None:
            await self._open_moto(public)
            topology = seen_from(topology, endpoint, public)
        self.topology = topology
        return topology

    async def _open_moto(self, public: str) -> None:
        pid = self.supervisor.pid(MOTO)
        if pid is None:
            raise StackError("moto exited while the topology was built", services=(MOTO,))
        os.kill(pid, MOTO_OPEN)
        try:
            await asyncio.to_thread(wait_until_up, public, timeout=60)
        except TimeoutError as exc:
            raise StackError(str(exc), services=(MOTO,)) from exc

    async def _service_roles(self, database_url: str) -> dict[str, str]:
        """Each service's own database role (roles.py); without the right to make roles (a
        DATABASE_URL user without CREATEROLE), every service shares that user, and we say so."""
        try:
            return await asyncio.to_thread(make_service_roles, database_url)
        except psycopg.errors.InsufficientPrivilege as exc:
            self.logs.notice(
                "postgres",
                f"per-service roles not made ({str(exc).strip()}): every service connects as "
                "DATABASE_URL's user; give that user CREATEROLE for least privilege",
            )
            return {}

    async def _bootstrap_again(self) -> None:
        """moto keeps its state in memory: after a restart, build the topology again."""
        topology = await self._bootstrap()
        self.logs.notice(
            MOTO,
            f"topology bootstrapped again: bus relay-{topology.env}, "
            f"{len(topology.queue_urls)} queues, bucket {topology.bucket}",
        )

    async def _wait_ready(self) -> None:
        """Until every service answers /readyz with 200: up, and its dependencies reachable
        (a service answers /healthz at once and starts in the background)."""
        deadline = time.monotonic() + self.config.startup_timeout_seconds
        pending = {program.name for program in self.programs}
        waiting: dict[str, str] = {}
        async with httpx.AsyncClient(timeout=2) as client:
            while pending:
                for name in sorted(pending):
                    ready, detail = await _readiness(client, f"{self.config.url(name)}/readyz")
                    if ready:
                        pending.discard(name)
                        self.logs.notice(name, "ready")
                    elif detail != waiting.get(name):
                        waiting[name] = detail
                        self.logs.notice(name, f"not ready yet: {detail}")
                crashing = sorted(
                    name for name in pending if self.supervisor.starts(name) >= CRASH_LOOP_STARTS
                )
                if crashing:
                    raise StackError(
                        f"{', '.join(crashing)} keeps exiting before it is ready",
                        services=tuple(crashing),
                    )
                if pending and time.monotonic() > deadline:
                    details = "; ".join(f"{n}: {waiting.get(n, '?')}" for n in sorted(pending))
                    raise StackError(
                        f"{', '.join(sorted(pending))} did not become ready (/readyz) within "
                        f"{self.config.startup_timeout_seconds:g}s "
                        f"(RELAY_STACK_STARTUP_TIMEOUT_SECONDS): {details}",
                        services=tuple(sorted(pending)),
                    )
                if pending:
                    await asyncio.sleep(0.25)

    def _write_stack_file(self) -> None:
        assert self.database is not None
        assert self.redis is not None
        assert self.topology is not None
        record = {
            "pid": os.getpid(),
            "env": self.config.env,
            "gateway_url": self.gateway_url,
            "urls": self.urls,
            "moto_endpoint": self.config.moto_endpoint,
            "database_url": self.database.url,
            "redis_url": self.redis.url,
            "bucket": self.topology.bucket,
            "log_dir": str(self.config.log_dir),
            "telemetry_dir": str(self.config.telemetry_dir),
        }
        # It may hold a database password: readable by this user only.
        fd = os.open(self.config.stack_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(record, indent=2) + "\n")


async def _readiness(client: httpx.AsyncClient, url: str) -> tuple[bool, str]:
    """(ready, what /readyz says in a few words)."""
    try:
        response = await client.get(url)
    except httpx.HTTPError as exc:
        return False, f"no answer ({type(exc).__name__})"
    if response.status_code == 200:
        return True, "ready"
    try:
        body = response.json()
        failing = [
            f"{name}: {check.get('detail', '')}"
            for name, check in body.get("checks", {}).items()
            if not check.get("ok")
        ]
        return False, f"{body.get('status', response.status_code)} ({'; '.join(failing)})"
    except (ValueError, AttributeError):
        return False, f"HTTP {response.status_code}"


def read_stack_file(path: Path) -> dict[str, Any] | None:
    """The running stack's record, or None when there is none (or its process is gone)."""
    try:
        record: dict[str, Any] = json.loads(path.read_text())
        os.kill(int(record["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return record
