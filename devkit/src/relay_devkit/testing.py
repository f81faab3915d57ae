"""pytest fixtures shared by every suite: real PostgreSQL, Redis and moto server.

Loaded by the root conftest.py. Nothing here fakes AWS, PostgreSQL or Redis: each session gets
a moto server process on a free port, a fresh PostgreSQL database, and the Redis from REDIS_URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
import uvicorn
from fastapi.testclient import TestClient
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from psycopg import sql

from relay_ops.stack.moto import free_port, start_moto, wait_until_up
from relay_ops.stack.topology import Topology, bootstrap
from relay_shared.internal_auth import generate_keypair
from relay_shared.settings import ServiceSettings
from relay_shared.telemetry import configure_telemetry

T = TypeVar("T")

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class Recorded:
    """What the test process's telemetry recorded (see the ``telemetry`` fixture)."""

    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())


@pytest.fixture(scope="session", autouse=True)
def _process_telemetry() -> Recorded:
    """The test process traces as a service does (same sampler and propagators), into memory:
    installed once, for every test, so that no test sees a different set-up depending on which
    ran before it. Its HTTP clients are not instrumented: a test's request to a stack must not
    carry the test's own (unsampled) trace context, which the services would honour."""
    recorded = Recorded(InMemorySpanExporter(), InMemoryMetricReader())
    configure_telemetry(
        ServiceSettings(service_name="tests"),
        span_processors=[SimpleSpanProcessor(recorded.spans)],
        metric_readers=[recorded.metrics],
        instrument=False,
    )
    return recorded


@pytest.fixture(autouse=True)
def telemetry(_process_telemetry: Recorded) -> Recorded:
    """Spans and metrics recorded in this process; the spans start empty for each test."""
    _process_telemetry.spans.clear()
    return _process_telemetry


@pytest.fixture(scope="session")
def aws_credentials() -> None:
    """Dummy credentials: every client in tests points at moto, never at AWS."""
    os.environ["AWS_ACCESS_KEY_ID"] = "testing"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"  # noqa: S105 - moto accepts anything
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    os.environ.pop("AWS_PROFILE", None)


@pytest.fixture(scope="session")
def moto_endpoint(aws_credentials: None) -> Iterator[str]:
    port = free_port()
    process = start_moto(port)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(endpoint)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def topology(moto_endpoint: str) -> Topology:
    """The routing declaration's bus, queues, DLQs and bucket, under a fresh env name."""
    return bootstrap(f"t{uuid.uuid4().hex[:10]}", endpoint_url=moto_endpoint)


def _admin_url() -> str:
    return os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh database for this test session, dropped at the end."""
    with fresh_database() as url:
        yield url


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty database on the server at DATABASE_URL, dropped on exit."""
    admin = _admin_url()
    name = f"relay_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = _with_dbname(admin, name)
    try:
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            # and the services' roles a stack made for it (relay_ops.stack.roles), cluster-wide
            roles = conn.execute(
                "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", (f"{name}_",)
            ).fetchall()
            for (role,) in roles:
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def _with_dbname(url: str, dbname: str) -> str:
    """The same server and credentials as ``url``, another database, as a postgresql:// URL."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


@pytest.fixture
def db_schema() -> str:
    """A schema name no other test uses, so tests share one database without interfering."""
    return f"s_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    redis.Redis.from_url(url).ping()
    return url


@pytest.fixture(scope="session")
def internal_keys() -> tuple[str, str]:
    """(private, public) Ed25519 keys for internal service tokens."""
    return generate_keypair()


async def eventually(
    probe: Callable[[], Awaitable[T]],
    *,
    until: Callable[[T], bool] = bool,
    within: float = 15.0,
    interval: float = 0.05,
) -> T:
    """Poll ``probe`` until ``until(result)`` holds; fail with the last result at the deadline."""
    deadline = time.monotonic() + within
    while True:
        result = await probe()
        if until(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s; last result: {result!r}")
        await asyncio.sleep(interval)


async def wait_ready(app: Any, *, within: float = 60.0) -> None:
    """Until a service app's start-up is done (its lifespan entered); raises what made it fail.

    A service answers at once and starts in the background (relay_shared.runtime), so a test
    that wants it working waits for this first.
    """
    async with asyncio.timeout(within):
        await app.state.runtime.wait_ready()


@contextlib.contextmanager
def ready_client(app: Any, **options: Any) -> Iterator[TestClient]:
    """A TestClient (sync) for a service app, once its start-up is done."""
    with TestClient(app, **options) as client:
        assert client.portal is not None  # set while the client's context is open
        client.portal.call(wait_ready, app)
        yield client


@contextlib.asynccontextmanager
async def serve_app(app: Any, *, ready: bool = True) -> AsyncIterator[str]:
    """Run an ASGI app with lifespan on a real socket (uvicorn, in this event loop).

    Use it where a test needs real HTTP, e.g. streaming SSE, which httpx's ASGITransport buffers.
    Yields the base URL once a Relay service app is ready (``ready=False``: as soon as it
    answers, e.g. to watch it start).
    """
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()  # start-up failed: raise its error
                raise RuntimeError("server exited during start-up")
            await asyncio.sleep(0.02)
        if ready and hasattr(getattr(app, "state", None), "runtime"):
            await wait_ready(app)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


class TcpProxy:
    """A TCP forwarder to ``target`` ("host:port") that a test can cut and restore, to play a
    dependency going away (PostgreSQL, Redis, the AWS endpoint) without touching the real one.

    ``stop()`` closes the listening socket and every open connection (new ones are refused, as
    from a stopped server); ``start()`` listens again on the same port; ``drop_connections()``
    resets the open connections but keeps accepting (a server restart, pg_terminate_backend).
    """

    def __init__(self, target: str, *, port: int | None = None) -> None:
        host, _, target_port = target.rpartition(":")
        self.target_host = host.strip("[]") or "127.0.0.1"
        self.target_port = int(target_port)
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pumps: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def url_for(self, url: str) -> str:
        """``url`` (a database URL, an endpoint) with its host and port replaced by the proxy's."""
        parts = urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@{self.address}" if userinfo else self.address
        return urlunsplit(parts._replace(netloc=netloc))

    async def __aenter__(self) -> TcpProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._accept, self.host, self.port, reuse_address=True
            )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        await self.drop_connections()

    async def drop_connections(self) -> None:
        for writer in list(self._writers):
            transport = writer.transport
            if isinstance(transport, asyncio.WriteTransport):
                transport.abort()  # a reset, not a polite close
        pumps = list(self._pumps)
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                self.target_host, self.target_port
            )
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, upstream_writer}
        pumps = [
            asyncio.create_task(self._pump(reader, upstream_writer)),
            asyncio.create_task(self._pump(upstream_reader, writer)),
        ]
        self._pumps.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            self._pumps.difference_update(pumps)
            for end in (writer, upstream_writer):
                self._writers.discard(end)
                end.transport.abort()

    @staticmethod
    async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
