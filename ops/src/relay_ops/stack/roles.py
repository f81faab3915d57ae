"""Per-service PostgreSQL roles (issue 16, least privilege): each service connects as a role of
its own that owns its schema and has no right on any other, so a compromised agent cannot read
the gateway's key hashes or another service's rows. The same statements make the roles on RDS
(`relay db roles`, docs/deploy.md), run once with the master user.

Role names carry the database's name (``<database>_<service>``): roles are cluster-wide, and
several stacks (tests) share one server with a database each.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

log = logging.getLogger(__name__)

# Every service keeps its rows in a schema of its own name (RELAY_DB_SCHEMA's default).
DB_SERVICES = ("gateway", "tasks", "agent", "notifier", "artifacts")
MAX_IDENTIFIER = 63

# What a schema may hold from before the roles (created by the master user): made the role's.
# (format()'s own specifiers are doubled: %(...)s are the statement's parameters.)
_OWNED_OBJECTS = """
SELECT format('ALTER %%s %%I.%%I OWNER TO %%I',
              CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                             WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,
              n.nspname, c.relname, %(role)s::text)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  AND NOT (c.relkind = 'S' AND EXISTS (  -- a column's sequence follows its table
      SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')))
  AND pg_get_userbyid(c.relowner) <> %(role)s
UNION ALL
SELECT format('ALTER ROUTINE %%I.%%I(%%s) OWNER TO %%I',
              n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), %(role)s::text)
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = %(schema)s AND pg_get_userbyid(p.proowner) <> %(role)s
UNION ALL
SELECT format('ALTER TYPE %%I.%%I OWNER TO %%I', n.nspname, t.typname, %(role)s::text)
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = %(schema)s AND t.typtype IN ('e', 'd', 'r', 'm')
  AND pg_get_userbyid(t.typowner) <> %(role)s
"""


def role_name(database: str, service: str) -> str:
    suffix = f"_{service}"
    return database[: MAX_IDENTIFIER - len(suffix)] + suffix


def make_service_roles(
    admin_url: str,
    services: Iterable[str] = DB_SERVICES,
    passwords: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Make (or bring up to date) each service's role in the database ``admin_url`` names:
    LOGIN with the given (else a new random) password, CONNECT on the database, owner of the
    service's schema and of everything in it, nothing else. Returns service -> its own URL.
    Idempotent; needs a user with CREATEROLE that may create schemas."""
    params: dict[str, Any] = conninfo_to_dict(admin_url)
    database = str(params.get("dbname") or params.get("user") or "postgres")
    urls: dict[str, str] = {}
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for service in services:
            role = role_name(database, service)
            password = (passwords or {}).get(service) or secrets.token_urlsafe(24)
            _ensure_role(conn, role, password)
            conn.execute(
                sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
                    sql.Identifier(database), sql.Identifier(role)
                )
            )
            _own_schema(conn, service, role)
            urls[service] = _as_user(admin_url, role, password)
        # Only the roles granted it may connect; nobody but an owner may create in public.
        conn.execute(
            sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database))
        )
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    return urls


def _as_user(url: str, user: str, password: str) -> str:
    """``url`` (a postgresql:// URL, as the services take) with another user and password."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(
        parts._replace(netloc=f"{quote(user, safe='')}:{quote(password, safe='')}@{host}")
    )


def _ensure_role(conn: psycopg.Connection[Any], role: str, password: str) -> None:
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    verb = "ALTER" if exists else "CREATE"
    # a password is not a bind parameter in utility statements: a quoted literal
    conn.execute(
        sql.SQL(verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(password)
        )
    )


def _own_schema(conn: psycopg.Connection[Any], schema: str, role: str) -> None:
    found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    if found is None:
        conn.execute(
            sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(
                sql.Identifier(schema), sql.Identifier(role)
            )
        )
        return
    conn.execute(
        sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(sql.Identifier(schema), sql.Identifier(role))
    )
    conn.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(sql.Identifier(schema)))
    statements = conn.execute(_OWNED_OBJECTS, {"role": role, "schema": schema}).fetchall()
    for (statement,) in statements:
        conn.execute(statement)
    if statements:
        log.info("made %d objects of schema %s the role %s's", len(statements), schema, role)
