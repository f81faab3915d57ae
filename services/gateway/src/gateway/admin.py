"""Operator commands for API keys (mounted by the root CLI as ``relay admin``).

``create-key`` prints the new key alone on stdout, so scripts can capture it
(``KEY=$(relay admin create-key --tenant acme)``); every message goes to stderr.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from gateway.keys import InvalidTenantName, IssuedKey
from gateway.repository import MIGRATIONS, ApiKeyRecord, ApiKeys
from gateway.settings import GatewaySettings
from relay_shared.db import schema_conninfo
from relay_shared.migrations import apply_migrations

T = TypeVar("T")

app = typer.Typer(help="Manage the gateway's API keys.", no_args_is_help=True)


def _with_keys(work: Callable[[ApiKeys], Awaitable[T]]) -> T:
    """Run ``work`` in one transaction on the gateway's schema, migrated as the service does."""
    settings = GatewaySettings()
    database_url = settings.database_url.get_secret_value()
    apply_migrations(database_url, settings.db_schema, MIGRATIONS)

    async def run() -> T:
        conn: AsyncConnection[dict[str, Any]] = await AsyncConnection.connect(
            schema_conninfo(database_url, settings.db_schema), row_factory=dict_row
        )
        async with conn, conn.transaction():
            return await work(ApiKeys(conn))

    return asyncio.run(run())


def _fail(message: str) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code=1)


@app.command("create-key")
def create_key(
    tenant: Annotated[str, typer.Option(help="Tenant name (the tenant id): [a-z0-9][a-z0-9_-]*.")],
) -> None:
    """Create an API key for TENANT and print it (only it) on stdout."""
    try:
        key: IssuedKey = _with_keys(lambda keys: keys.create(tenant))
    except InvalidTenantName as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"created API key {key.prefix}... for tenant {tenant}", err=True)
    typer.echo(key.raw)


@app.command("revoke-key")
def revoke_key(
    prefix: Annotated[str, typer.Option(help="The key's prefix: its first 12 characters.")],
) -> None:
    """Revoke the API key with this prefix; it stops working at once."""
    if not _with_keys(lambda keys: keys.revoke(prefix)):
        raise _fail(f"no API key with prefix {prefix!r}")


@app.command("list-keys")
def list_keys(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None,
) -> None:
    """List API keys (prefix, tenant, created, last used, revoked); never the keys themselves."""
    records: list[ApiKeyRecord] = _with_keys(lambda keys: keys.records(tenant))
    for record in records:
        typer.echo(
            "\t".join(
                str(value or "-")
                for value in (
                    record.prefix,
                    record.tenant_id,
                    record.created_at.isoformat(),
                    record.last_used_at and record.last_used_at.isoformat(),
                    record.revoked_at and f"revoked {record.revoked_at.isoformat()}",
                )
            )
        )


if __name__ == "__main__":
    app()
