"""PostgreSQL for the local stack: the server DATABASE_URL names, with its database created if
missing; or, when nothing answers there and the server binaries are installed, a throwaway server
under the state dir on a free port (wiped at the next start, like moto's state)."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from relay_ops.stack.config import redact
from relay_ops.stack.errors import StackError
from relay_ops.stack.moto import free_port
from relay_ops.stack.stores import Provisioned, wait_ready
from relay_ops.stack.supervisor import ProcessSpec, Supervisor

NAME = "postgres"
SUPERUSER = "postgres"
MAINTENANCE_DATABASES = ("postgres", "template1")
DEBIAN_BIN_DIRS = "/usr/lib/postgresql/*/bin"
# A throwaway server holds nothing worth an fsync.
THROWAWAY_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


async def provide_postgres(url: str, *, state_dir: Path, supervisor: Supervisor) -> Provisioned:
    existing = await asyncio.to_thread(use_existing, url)
    if existing is not None:
        return existing
    bin_dir = find_server_binaries()
    if bin_dir is None:
        raise StackError(
            f"PostgreSQL does not answer at {redact(url)}, and no PostgreSQL server binaries "
            f"(initdb, postgres) are on PATH or in {DEBIAN_BIN_DIRS} to start a throwaway one.\n"
            "Start PostgreSQL, install it (e.g. `apt-get install postgresql`), or point "
            "DATABASE_URL at a server you can reach."
        )
    return await start_throwaway(bin_dir, database_name(url), state_dir, supervisor)


def database_name(url: str) -> str:
    params = conninfo_to_dict(url)
    return str(params.get("dbname") or params.get("user") or SUPERUSER)


def use_existing(url: str) -> Provisioned | None:
    """The server at ``url``, its database created if missing; None when nothing answers."""
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.OperationalError as refused:
        first_error = refused
    else:
        return Provisioned(url, f"PostgreSQL at {redact(url)}")

    name = database_name(url)
    for maintenance in MAINTENANCE_DATABASES:
        try:
            conn = psycopg.connect(url, dbname=maintenance, autocommit=True, connect_timeout=3)
        except psycopg.OperationalError:
            continue
        with conn:
            if _database_exists(conn, name):
                break  # the database is there: the first error was about something else
            _create_database(conn, name)
        return Provisioned(url, f"PostgreSQL at {redact(url)} (created database {name!r})")

    if _answers(url):
        raise StackError(
            f"PostgreSQL at {redact(url)} answers but refused the connection: "
            f"{first_error}\nCheck the user, password and database in DATABASE_URL."
        )
    return None


def _database_exists(conn: psycopg.Connection[Any], name: str) -> bool:
    row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


def _create_database(conn: psycopg.Connection[Any], name: str) -> None:
    # Another stack starting at the same moment may win the race; its database is as good.
    with contextlib.suppress(psycopg.errors.DuplicateDatabase):
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _answers(url: str) -> bool:
    """Whether anything listens where ``url`` points (a TCP port or a Unix socket)."""
    params = conninfo_to_dict(url)
    host = str(params.get("host") or "").split(",")[0]
    port = int(str(params.get("port") or "5432").split(",")[0])
    if not host or host.startswith("/"):
        return Path(host or "/var/run/postgresql", f".s.PGSQL.{port}").exists()
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        return False
    return True


def find_server_binaries() -> Path | None:
    """A directory holding both initdb and postgres: next to those on PATH, else Debian's."""
    candidates: list[Path] = []
    for tool in ("initdb", "pg_ctl", "postgres"):
        found = shutil.which(tool)
        if found:
            candidates.append(Path(found).resolve().parent)
    candidates.extend(
        Path(path) for path in sorted(glob.glob(DEBIAN_BIN_DIRS), key=_version_key, reverse=True)
    )
    for directory in candidates:
        if all(os.access(directory / tool, os.X_OK) for tool in ("initdb", "postgres")):
            return directory
    return None


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.name
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def server_user() -> str | None:
    """PostgreSQL refuses to run as root: run it as 'postgres' (or 'nobody') then."""
    if os.geteuid() != 0:
        return None
    for name in (SUPERUSER, "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise StackError(
        "Running as root, and neither a 'postgres' nor a 'nobody' user exists to run "
        "a throwaway PostgreSQL; point DATABASE_URL at a running server instead."
    )


async def start_throwaway(
    bin_dir: Path, dbname: str, state_dir: Path, supervisor: Supervisor
) -> Provisioned:
    root = state_dir / NAME
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    root.chmod(0o700)
    user = server_user()
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    data = root / "data"
    await asyncio.to_thread(_initdb, bin_dir, data, user)

    port = free_port()
    argv = [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1"]
    argv += ["-k", ""]  # no Unix socket: TCP only, and no path-length limit on the state dir
    for setting in THROWAWAY_SETTINGS:
        argv += ["-c", setting]
    # SIGINT is PostgreSQL's fast shutdown; SIGTERM would wait for every client to leave.
    await supervisor.start(ProcessSpec(NAME, argv, cwd=root, user=user, stop_signal=signal.SIGINT))
    admin_url = f"postgresql://{SUPERUSER}@127.0.0.1:{port}/postgres"
    await wait_ready(NAME, lambda: _accepts(admin_url))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        _create_database(conn, dbname)
    return Provisioned(
        f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{dbname}",
        f"throwaway PostgreSQL on 127.0.0.1:{port} (data in {data})",
        throwaway=True,
    )


def _initdb(bin_dir: Path, data: Path, user: str | None) -> None:
    argv = [str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust"]
    argv += ["-E", "UTF8", "--locale=C", "--no-sync"]
    done = subprocess.run(
        argv, cwd=data.parent, user=user, capture_output=True, text=True, check=False
    )
    if done.returncode == 0:
        return
    hint = ""
    if user is not None:
        hint = (
            f"\nIt ran as user {user!r} (PostgreSQL refuses root); that user must be able to "
            f"reach {data.parent}. Set RELAY_STACK_STATE_DIR to a directory it can reach."
        )
    raise StackError(f"initdb failed (exit code {done.returncode}):\n{done.stderr.strip()}{hint}")


def _accepts(url: str) -> bool:
    try:
        psycopg.connect(url, connect_timeout=1).close()
    except psycopg.OperationalError:
        return False
    return True
