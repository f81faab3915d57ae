"""Numbered SQL migrations, one schema per service, applied at start-up with yoyo.

yoyo records what ran and applies each file in a transaction. Its own lock is a table row that a
killed process leaves behind, and services here are killed and restarted by design; so replicas
serialise on a PostgreSQL advisory lock (released by the server when a session dies), and the
holder clears any stale yoyo lock row before applying. See docs/adr/0003-migrations.md.
"""

from __future__ import annotations

import asyncio
import logging
import math
from importlib.resources import files
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from yoyo import get_backend, read_migrations

from relay_shared.settings import ServiceSettings

log = logging.getLogger(__name__)

KIT_OUTBOX = Path(str(files(__package__) / "outbox"))
KIT_INBOX = Path(str(files(__package__) / "inbox"))


def yoyo_url(database_url: str, schema: str, *, connect_timeout: int | None = None) -> str:
    parts = urlsplit(database_url)
    if parts.scheme not in {"postgres", "postgresql", "postgresql+psycopg"}:
        raise ValueError(f"unsupported database URL scheme: {parts.scheme!r}")
    query = dict(parse_qsl(parts.query))
    query["schema"] = schema
    if connect_timeout is not None:
        query.setdefault("connect_timeout", str(connect_timeout))
    return urlunsplit(parts._replace(scheme="postgresql+psycopg", query=urlencode(query)))


def apply_migrations(
    database_url: str, schema: str, *sources: Path, connect_timeout: float = 5.0
) -> list[str]:
    """Create ``schema`` if needed and apply every pending migration from ``sources``, in order.

    Returns the ids applied now. Blocking: call it with ``asyncio.to_thread`` from async code.
    ``connect_timeout`` bounds each connection attempt, so an unreachable server fails fast and
    start-up retries instead of hanging in a thread nobody can cancel.
    """
    timeout = max(2, math.ceil(connect_timeout))  # libpq: whole seconds, at least 2
    with psycopg.connect(database_url, autocommit=True, connect_timeout=timeout) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"relay-migrations:{schema}",))
        try:
            # Only when missing: a service's own role owns its schema but may not create
            # schemas (CREATE SCHEMA IF NOT EXISTS checks that right even when it exists).
            found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
            if found.fetchone() is None:
                conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
                )
            backend = get_backend(yoyo_url(database_url, schema, connect_timeout=timeout))
            try:
                backend.break_lock()  # only a dead migrator can hold it while we hold ours
                migrations = read_migrations(*(str(s) for s in sources))
                pending = backend.to_apply(migrations)
                with backend.lock():
                    backend.apply_migrations(pending)
                return [m.id for m in pending]
            finally:
                backend.connection.close()
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (f"relay-migrations:{schema}",))


async def migrate(settings: ServiceSettings, *sources: Path) -> None:
    """``apply_migrations`` for a service, from async code (in a thread)."""
    applied = await asyncio.to_thread(
        apply_migrations,
        settings.database_url.get_secret_value(),
        settings.db_schema,
        *sources,
        connect_timeout=settings.db_connect_timeout,
    )
    if applied:
        log.info("applied migrations: %s", ", ".join(applied))
