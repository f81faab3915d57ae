"""PostgreSQL and Redis for the stack, against real servers: the configured ones, or throwaway
ones started from the installed binaries when nothing answers."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
from psycopg import sql

from gateway.rate_limiter import limiter_redis
from relay_devkit.testing import DEFAULT_DATABASE_URL
from relay_ops.stack import postgres
from relay_ops.stack.errors import StackError
from relay_ops.stack.logs import StackLogs
from relay_ops.stack.moto import free_port
from relay_ops.stack.postgres import find_server_binaries, provide_postgres, use_existing
from relay_ops.stack.redis_server import provide_redis
from relay_ops.stack.supervisor import Supervisor

pytestmark = pytest.mark.integration


@pytest.fixture
def admin_url() -> str:
    return os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)


@pytest.fixture
def missing_database(admin_url: str) -> Iterator[str]:
    """A URL naming a database that does not exist yet; dropped afterwards."""
    name = f"relay_stack_{uuid.uuid4().hex[:10]}"
    yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _supervisor(state_dir: Path) -> Supervisor:
    return Supervisor(StackLogs(state_dir / "logs"), state_dir / "run", grace_seconds=10)


def _unreachable_postgres() -> str:
    return f"postgresql://postgres@127.0.0.1:{free_port()}/relay_app"


def test_a_missing_database_is_created_on_a_server_that_answers(missing_database: str) -> None:
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(missing_database).close()

    found = use_existing(missing_database)

    assert found is not None
    assert found.url == missing_database
    assert not found.throwaway
    assert "created database" in found.summary
    with psycopg.connect(missing_database) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (
            missing_database.rsplit("/", 1)[1],
        )
    assert "created" not in (use_existing(missing_database) or found).summary  # now it exists


def test_a_server_that_answers_but_refuses_says_so(admin_url: str) -> None:
    url = admin_url.replace("postgres@", f"nobody_{uuid.uuid4().hex[:6]}@", 1)
    with pytest.raises(StackError, match="answers but refused"):
        use_existing(url)


def test_nothing_answering_is_not_an_error_but_a_cue_for_a_throwaway_server() -> None:
    assert use_existing(_unreachable_postgres()) is None


async def test_no_server_and_no_binaries_says_what_is_missing_and_how_to_point_elsewhere(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(state_dir))
    monkeypatch.setattr(postgres, "DEBIAN_BIN_DIRS", str(state_dir / "*" / "bin"))
    with pytest.raises(StackError) as raised:
        await provide_postgres(
            _unreachable_postgres(), state_dir=state_dir, supervisor=_supervisor(state_dir)
        )
    message = str(raised.value)
    assert "does not answer" in message
    assert "initdb" in message
    assert "DATABASE_URL" in message


async def test_a_throwaway_postgresql_starts_when_nothing_answers_and_stops_with_the_stack(
    state_dir: Path, alive: Callable[[int], bool]
) -> None:
    if find_server_binaries() is None:
        pytest.skip(
            "NOT TESTED: no PostgreSQL server binaries (initdb, postgres) on PATH or in "
            "/usr/lib/postgresql/*/bin, so the throwaway PostgreSQL cannot be started here"
        )
    supervisor = _supervisor(state_dir)
    try:
        found = await provide_postgres(
            _unreachable_postgres(), state_dir=state_dir, supervisor=supervisor
        )
        assert found.throwaway
        assert found.url.endswith("/relay_app")
        with psycopg.connect(found.url) as conn:
            conn.execute("CREATE TABLE t (x int)")
            conn.execute("INSERT INTO t VALUES (1)")
            assert conn.execute("SELECT current_database(), count(*) FROM t").fetchone() == (
                "relay_app",
                1,
            )
        assert (state_dir / "postgres" / "data" / "PG_VERSION").exists()
        pid = supervisor.pid("postgres")
        assert pid is not None
    finally:
        await supervisor.stop()
    assert not alive(pid)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(found.url, connect_timeout=2).close()


async def test_a_throwaway_redis_starts_when_nothing_answers_and_stops_with_the_stack(
    state_dir: Path, alive: Callable[[int], bool]
) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("NOT TESTED: no redis-server on PATH, so a throwaway Redis cannot start here")
    supervisor = _supervisor(state_dir)
    try:
        found = await provide_redis(
            f"redis://127.0.0.1:{free_port()}/3", state_dir=state_dir, supervisor=supervisor
        )
        assert found.throwaway
        assert found.url.endswith("/3")  # the database number is kept
        client = redis.Redis.from_url(found.url)
        client.set("k", "v")
        assert client.get("k") == b"v"
        client.close()
        pid = supervisor.pid("redis")
        assert pid is not None
    finally:
        await supervisor.stop()
    assert not alive(pid)


async def test_a_redis_that_answers_is_used_as_it_is(state_dir: Path) -> None:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    supervisor = _supervisor(state_dir)
    found = await provide_redis(url, state_dir=state_dir, supervisor=supervisor)
    assert found.url == url
    assert not found.throwaway
    assert supervisor.names() == []


async def test_a_secure_throwaway_redis_takes_only_tls_with_its_password(
    state_dir: Path,
) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("NOT TESTED: no redis-server on PATH, so a throwaway Redis cannot start here")
    supervisor = _supervisor(state_dir)
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        # even with a Redis answering at REDIS_URL, secure starts one of its own
        found = await provide_redis(url, state_dir=state_dir, supervisor=supervisor, secure=True)
        assert found.throwaway
        parts = urlsplit(found.url)
        assert parts.scheme == "rediss"
        assert parts.password
        assert parts.password not in found.summary
        conf = state_dir / "redis" / "redis.conf"
        assert oct(conf.stat().st_mode & 0o777) == "0o600"

        # the services' clients, as they are built (the limiter's and the runtime's)
        limiter = limiter_redis(found.url, timeout_seconds=2)
        assert await limiter.ping()
        await limiter.aclose()
        client = redis.Redis.from_url(found.url)
        client.set("k", "v")
        assert client.get("k") == b"v"
        client.close()

        plain = redis.Redis(host="127.0.0.1", port=parts.port, socket_timeout=2)
        with pytest.raises(redis.ConnectionError):  # TLS only: no plain-text port
            plain.ping()
        plain.close()
        no_password = redis.Redis.from_url(found.url.replace(f":{parts.password}@", ""))
        with pytest.raises(redis.AuthenticationError):
            no_password.ping()
        no_password.close()
    finally:
        await supervisor.stop()
