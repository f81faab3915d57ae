"""Operator commands for API keys and per-tenant rate limits and quotas (mounted by the root
CLI as ``relay admin``).

``create-key`` prints the new key alone on stdout, so scripts can capture it
(``KEY=$(relay admin create-key --tenant acme)``); every message goes to stderr.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

import typer
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from gateway.keys import InvalidTenantName, IssuedKey, check_tenant_name
from gateway.rate_limits import LimitOverride
from gateway.repository import MIGRATIONS, ApiKeyRecord, ApiKeys, RateLimitOverrides
from gateway.settings import GatewaySettings
from relay_shared.db import schema_conninfo
from relay_shared.migrations import apply_migrations

T = TypeVar("T")

app = typer.Typer(
    help="Manage the gateway's API keys and per-tenant rate limits and quotas.",
    no_args_is_help=True,
)


def _with_keys(work: Callable[[ApiKeys], Awaitable[T]]) -> T:
    return _in_transaction(lambda conn: work(ApiKeys(conn)))


def _with_overrides(work: Callable[[RateLimitOverrides], Awaitable[T]]) -> T:
    return _in_transaction(lambda conn: work(RateLimitOverrides(conn)))


def _in_transaction(work: Callable[[AsyncConnection[dict[str, Any]]], Awaitable[T]]) -> T:
    """Run ``work`` in one transaction on the gateway's schema, migrated as the service does."""
    settings = GatewaySettings()
    database_url = settings.database_url.get_secret_value()
    apply_migrations(database_url, settings.db_schema, MIGRATIONS)

    async def run() -> T:
        conn: AsyncConnection[dict[str, Any]] = await AsyncConnection.connect(
            schema_conninfo(database_url, settings.db_schema), row_factory=dict_row
        )
        async with conn, conn.transaction():
            return await work(conn)

    return asyncio.run(run())


def _fail(message: str) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code=1)


@app.command("create-key")
def create_key(
    tenant: Annotated[str, typer.Option(help="Tenant name (the tenant id): [a-z0-9][a-z0-9_-]*.")],
    name: Annotated[
        str | None, typer.Option(help="What the key is for (1-100 characters), shown by list-keys.")
    ] = None,
    expires_in_days: Annotated[
        float | None,
        typer.Option(min=0.0001, help="Days until the key stops working (default: never)."),
    ] = None,
) -> None:
    """Create an API key for TENANT and print it (only it) on stdout."""
    if name is not None and not 1 <= len(name) <= 100:
        raise _fail("--name: 1 to 100 characters")
    expires_at = (
        None if expires_in_days is None else datetime.now(UTC) + timedelta(days=expires_in_days)
    )
    try:
        key: IssuedKey = _with_keys(
            lambda keys: keys.create(tenant, name=name, expires_at=expires_at)
        )
    except InvalidTenantName as exc:
        raise _fail(str(exc)) from exc
    until = f", expiring {expires_at.isoformat(timespec='seconds')}" if expires_at else ""
    typer.echo(f"created API key {key.prefix}... for tenant {tenant}{until}", err=True)
    typer.echo(key.raw)


@app.command("revoke-key")
def revoke_key(
    prefix: Annotated[str, typer.Option(help="The key's prefix: its first 12 characters.")],
) -> None:
    """Revoke the API key with this prefix; every gateway refuses it within
    RELAY_API_KEY_CACHE_SECONDS (5 by default)."""
    if not _with_keys(lambda keys: keys.revoke(prefix)):
        raise _fail(f"no API key with prefix {prefix!r}")


@app.command("list-keys")
def list_keys(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None,
) -> None:
    """List API keys, a tab-separated line each: prefix, tenant, name, created, expires, last
    used, state (active, expired or revoked); never the keys themselves."""
    records: list[ApiKeyRecord] = _with_keys(lambda keys: keys.records(tenant))
    now = datetime.now(UTC)
    for record in records:
        if record.revoked_at is not None:
            state = f"revoked {record.revoked_at.isoformat()}"
        elif record.expires_at is not None and record.expires_at <= now:
            state = "expired"
        else:
            state = "active"
        typer.echo(
            "\t".join(
                str(value or "-")
                for value in (
                    record.prefix,
                    record.tenant_id,
                    record.name,
                    record.created_at.isoformat(),
                    record.expires_at and record.expires_at.isoformat(),
                    record.last_used_at and record.last_used_at.isoformat(),
                    state,
                )
            )
        )


PerSecond = Annotated[float | None, typer.Option(min=0.001, help="Tokens per second.")]
Burst = Annotated[int | None, typer.Option(min=1, help="Bucket size: the largest burst.")]
ActiveTasks = Annotated[
    int | None, typer.Option(min=0, help="Unfinished tasks at once (0: no quota).")
]
DailySpend = Annotated[
    float | None,
    typer.Option(min=0, help="Estimated USD of tasks submitted since 00:00 UTC (0: no quota)."),
]
DailyTokens = Annotated[
    int | None, typer.Option(min=0, help="Tokens of tasks submitted since 00:00 UTC (0: no quota).")
]


@app.command("set-limits")
def set_limits(
    *,
    tenant: Annotated[str, typer.Option(help="Tenant name (the tenant id).")],
    requests_per_second: PerSecond = None,
    requests_burst: Burst = None,
    submits_per_second: PerSecond = None,
    submits_burst: Burst = None,
    active_tasks: ActiveTasks = None,
    daily_spend_usd: DailySpend = None,
    daily_tokens: DailyTokens = None,
    reset: Annotated[
        bool, typer.Option("--reset", help="Drop the tenant's overrides: back to the defaults.")
    ] = False,
) -> None:
    """Override TENANT's rate limits and quotas (the options given; the others keep their
    value), or --reset them. Gateways apply it within RELAY_RATE_LIMIT_OVERRIDES_TTL_SECONDS."""
    override = LimitOverride(
        requests_per_second=requests_per_second,
        requests_burst=requests_burst,
        submits_per_second=submits_per_second,
        submits_burst=submits_burst,
        active_tasks=active_tasks,
        daily_spend_usd=daily_spend_usd,
        daily_tokens=daily_tokens,
    )
    given = override != LimitOverride()
    if reset == given:
        raise _fail(
            "give --reset, or at least one of --requests-per-second, --requests-burst, "
            "--submits-per-second, --submits-burst, --active-tasks, --daily-spend-usd, "
            "--daily-tokens"
        )
    try:
        check_tenant_name(tenant)
    except InvalidTenantName as exc:
        raise _fail(str(exc)) from exc
    if reset:
        had = _with_overrides(lambda overrides: overrides.reset(tenant))
        typer.echo(f"{tenant}: {'back to' if had else 'already on'} the defaults", err=True)
    else:
        _with_overrides(lambda overrides: overrides.set(tenant, override))
    _show(tenant)


@app.command("show-limits")
def show_limits(
    tenant: Annotated[str, typer.Option(help="Tenant name (the tenant id).")],
) -> None:
    """Print TENANT's rate limits and quotas, one per line: name, value (a quota of 0: none),
    and whether it is the tenant's override or the default (the defaults as this environment's
    RELAY_RATE_LIMIT_* and RELAY_QUOTA_* say)."""
    _show(tenant)


def _show(tenant: str) -> None:
    override = _with_overrides(lambda overrides: overrides.get(tenant)) or LimitOverride()
    defaults = GatewaySettings().rate_limit_defaults
    for name, value in vars(override.over(defaults)).items():
        source = "default" if getattr(override, name) is None else "override"
        typer.echo(f"{name}\t{value:g}\t{source}")


if __name__ == "__main__":
    app()
