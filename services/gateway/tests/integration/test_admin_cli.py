"""``relay admin``: create-key prints the key alone; it authenticates until revoke-key or its
expiry;
set-limits and show-limits keep a tenant's rate-limit and quota overrides."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator

import psycopg
import pytest
from typer.testing import CliRunner

from gateway.admin import app as admin
from gateway.keys import looks_like_key
from gateway.rate_limits import LimitOverride
from gateway.repository import PostgresKeyStore, PostgresLimitOverrides
from relay_shared.db import Database, schema_conninfo

pytestmark = pytest.mark.integration


@pytest.fixture
def cli_env(database_url: str, db_schema: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "RELAY_DATABASE_URL": database_url,
        "RELAY_DB_SCHEMA": db_schema,
    }


@pytest.fixture
async def keys(database_url: str, db_schema: str) -> AsyncIterator[PostgresKeyStore]:
    database = Database(database_url, db_schema, max_size=1)
    await database.open()
    try:
        yield PostgresKeyStore(database)
    finally:
        await database.close()


async def _run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = await asyncio.to_thread(CliRunner().invoke, admin, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


async def test_create_key_prints_one_line_that_authenticates_until_revoked(
    cli_env: dict[str, str], keys: PostgresKeyStore
) -> None:
    code, out, err = await _run(cli_env, "create-key", "--tenant", "acme")

    assert code == 0, err
    assert out.count("\n") == 1
    assert out.endswith("\n")
    key = out.strip()
    assert looks_like_key(key)
    assert key[:12] in err  # the operator learns the prefix, on stderr
    assert await keys.tenant_for(key) == "acme"

    code, out, err = await _run(cli_env, "revoke-key", "--prefix", key[:12])

    assert (code, out) == (0, "")
    assert await keys.tenant_for(key) is None


async def test_list_keys_shows_prefixes_never_keys(cli_env: dict[str, str]) -> None:
    _, acme, _ = await _run(cli_env, "create-key", "--tenant", "acme")
    _, globex, _ = await _run(cli_env, "create-key", "--tenant", "globex")

    code, out, _ = await _run(cli_env, "list-keys", "--tenant", "acme")

    assert code == 0
    assert acme.strip()[:12] in out
    assert globex.strip()[:12] not in out
    assert acme.strip() not in out


async def test_a_named_key_expires_and_list_keys_shows_its_state(
    cli_env: dict[str, str], keys: PostgresKeyStore, database_url: str, db_schema: str
) -> None:
    code, out, err = await _run(
        cli_env, "create-key", "--tenant", "acme", "--name", "ci deploys", "--expires-in-days", "1"
    )
    assert code == 0, err
    key = out.strip()
    assert "expiring" in err
    assert await keys.tenant_for(key) == "acme"
    _, listed, _ = await _run(cli_env, "list-keys", "--tenant", "acme")
    [line] = [row.split("\t") for row in listed.splitlines() if row.startswith(key[:12])]
    prefix, tenant, name, _, expires, last_used, state = line
    assert (prefix, tenant, name, state) == (key[:12], "acme", "ci deploys", "active")
    assert expires != "-"
    assert last_used != "-"  # the lookup above used it

    # a day later (moved back in the database): the key no longer authenticates
    conn = await psycopg.AsyncConnection.connect(
        schema_conninfo(database_url, db_schema), autocommit=True
    )
    async with conn:
        await conn.execute(
            "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE prefix = %s",
            (key[:12],),
        )
    assert await keys.tenant_for(key) is None
    _, listed, _ = await _run(cli_env, "list-keys", "--tenant", "acme")
    assert [row.split("\t")[-1] for row in listed.splitlines() if row.startswith(key[:12])] == [
        "expired"
    ]


async def test_mistakes_fail_with_a_message_on_stderr_and_nothing_on_stdout(
    cli_env: dict[str, str],
) -> None:
    bad_tenant = await _run(cli_env, "create-key", "--tenant", "Acme Corp")
    unknown = await _run(cli_env, "revoke-key", "--prefix", "rly_nothere")
    long_name = await _run(cli_env, "create-key", "--tenant", "acme", "--name", "x" * 101)
    past = await _run(cli_env, "create-key", "--tenant", "acme", "--expires-in-days", "-1")

    assert bad_tenant[:2] == (1, "")
    assert "invalid tenant name" in bad_tenant[2]
    assert unknown[:2] == (1, "")
    assert "rly_nothere" in unknown[2]
    assert long_name[:2] == (1, "")
    assert past[0] != 0
    assert past[1] == ""


def test_python_m_gateway_admin_prints_only_the_key(cli_env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway.admin", "create-key", "--tenant", "acme"],
        env={**os.environ, **cli_env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert looks_like_key(done.stdout.removesuffix("\n"))


# --- rate limits ------------------------------------------------------------------------------


@pytest.fixture
async def overrides(database_url: str, db_schema: str) -> AsyncIterator[PostgresLimitOverrides]:
    database = Database(database_url, db_schema, max_size=1)
    await database.open()
    try:
        yield PostgresLimitOverrides(database)
    finally:
        await database.close()


def _limits(out: str) -> dict[str, tuple[str, str]]:
    rows = (line.split("\t") for line in out.splitlines())
    return {name: (value, source) for name, value, source in rows}


async def test_set_limits_overrides_what_is_given_and_reset_drops_it(
    cli_env: dict[str, str], overrides: PostgresLimitOverrides
) -> None:
    code, out, err = await _run(
        cli_env,
        "set-limits",
        "--tenant",
        "acme",
        "--requests-per-second",
        "2.5",
        "--submits-burst",
        "3",
        "--daily-spend-usd",
        "12.5",
    )
    assert code == 0, err
    assert _limits(out) == {
        "requests_per_second": ("2.5", "override"),
        "requests_burst": ("100", "default"),
        "submits_per_second": ("10", "default"),
        "submits_burst": ("3", "override"),
        "active_tasks": ("100", "default"),
        "daily_spend_usd": ("12.5", "override"),
        "daily_tokens": ("0", "default"),
    }
    # a second call changes what it gives and keeps the rest; 0 is "no quota" for this tenant
    code, _, err = await _run(
        cli_env, "set-limits", "--tenant", "acme", "--submits-burst", "4", "--active-tasks", "0"
    )
    assert code == 0, err
    assert await overrides.override_for("acme") == LimitOverride(
        requests_per_second=2.5, submits_burst=4, active_tasks=0, daily_spend_usd=12.5
    )
    assert await overrides.override_for("globex") is None

    code, out, err = await _run(cli_env, "show-limits", "--tenant", "acme")
    assert code == 0, err
    assert _limits(out)["submits_burst"] == ("4", "override")

    code, out, err = await _run(cli_env, "set-limits", "--tenant", "acme", "--reset")
    assert code == 0, err
    assert {source for _, source in _limits(out).values()} == {"default"}
    assert await overrides.override_for("acme") is None


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("--reset", "--requests-burst", "5"),
        ("--requests-burst", "0"),
        ("--submits-per-second", "0"),
        ("--active-tasks", "-1"),
        ("--daily-spend-usd", "-0.5"),
    ],
    ids=[
        "nothing",
        "reset-and-a-value",
        "zero-burst",
        "zero-rate",
        "negative-quota",
        "negative-spend",
    ],
)
async def test_set_limits_refuses_nonsense(cli_env: dict[str, str], args: tuple[str, ...]) -> None:
    code, out, _ = await _run(cli_env, "set-limits", "--tenant", "acme", *args)
    assert code != 0
    assert out == ""
