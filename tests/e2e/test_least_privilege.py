"""Least privilege inside the running stack: every service talks to PostgreSQL as a role of its
own (relay_ops.stack.roles), which owns its schema and cannot read another service's."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from relay_devkit.api_client import PublicApi
from relay_ops.stack.process import RunningStack
from relay_ops.stack.roles import DB_SERVICES, role_name

pytestmark = pytest.mark.timeout(60)


async def test_each_service_connects_as_its_own_role_and_cannot_read_another_schema(
    stack: RunningStack, api: PublicApi
) -> None:
    await api.submit("/steps 1")  # every service has been at work
    admin_url = stack.environment["DATABASE_URL"]
    database = str(conninfo_to_dict(admin_url)["dbname"])
    roles = {role_name(database, service): service for service in DB_SERVICES}

    async with await psycopg.AsyncConnection.connect(admin_url, autocommit=True) as admin:
        cursor = await admin.execute(
            "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = %s", (database,)
        )
        connected = {row[0] for row in await cursor.fetchall()}
        assert set(roles) <= connected  # each service's pool, as its role
        cursor = await admin.execute(
            "SELECT nspname, pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = ANY(%s)",
            (list(DB_SERVICES),),
        )
        owners = dict(await cursor.fetchall())
        assert owners == {service: role_name(database, service) for service in DB_SERVICES}
        # the agent's role, as a compromised agent would use it: no key hashes, no tasks
        agent = sql.Identifier(role_name(database, "agent"))
        await admin.execute(sql.SQL("SET ROLE {}").format(agent))
        for schema, table in (
            ("gateway", "api_keys"),
            ("tasks", "tasks"),
            ("notifier", "webhook_endpoints"),
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                await admin.execute(
                    sql.SQL("SELECT 1 FROM {} LIMIT 1").format(sql.Identifier(schema, table))
                )
        await admin.execute("RESET ROLE")
