"""Per-service database roles on real PostgreSQL: each service's role owns its schema and can do
its migrations there, cannot read another service's schema, and takes over what the admin user
made there before the roles existed. Making them again changes nothing but the passwords."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from relay_devkit.testing import DEFAULT_DATABASE_URL
from relay_ops.cli import app as relay
from relay_ops.db import password_secret_name
from relay_ops.stack.roles import DB_SERVICES, make_service_roles, role_name
from relay_shared.migrations import apply_migrations

pytestmark = pytest.mark.integration


@pytest.fixture
def database() -> Iterator[str]:
    name = f"relay_roles_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(DEFAULT_DATABASE_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield DEFAULT_DATABASE_URL.rpartition("/")[0] + f"/{name}"
    finally:
        with psycopg.connect(DEFAULT_DATABASE_URL, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            for service in ("gateway", "tasks", "agent", "notifier", "artifacts"):
                admin.execute(
                    sql.SQL("DROP ROLE IF EXISTS {}").format(
                        sql.Identifier(role_name(name, service))
                    )
                )


def test_a_service_role_owns_its_schema_and_cannot_read_another(database: str) -> None:
    # the admin user made the gateway's table before there were roles
    with psycopg.connect(database, autocommit=True) as admin:
        admin.execute("CREATE SCHEMA gateway")
        admin.execute("CREATE TABLE gateway.api_keys (key_hash text)")
        admin.execute("INSERT INTO gateway.api_keys VALUES ('secret-hash')")

    urls = make_service_roles(database)
    again = make_service_roles(database)  # idempotent: new passwords, same rights
    assert set(urls) == set(again) == {"gateway", "tasks", "agent", "notifier", "artifacts"}

    with psycopg.connect(again["tasks"], autocommit=True) as tasks:
        tasks.execute("CREATE TABLE tasks.t (x int)")  # its own schema: it may build there
        tasks.execute("INSERT INTO tasks.t VALUES (1)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            tasks.execute("SELECT * FROM gateway.api_keys")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            tasks.execute("CREATE TABLE public.sneaky (x int)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            tasks.execute("CREATE SCHEMA elsewhere")
    with psycopg.connect(again["gateway"], autocommit=True) as gateway:
        # what the admin made is the gateway role's now: readable, and alterable by migrations
        assert gateway.execute("SELECT key_hash FROM gateway.api_keys").fetchall() == [
            ("secret-hash",)
        ]
        gateway.execute("ALTER TABLE gateway.api_keys ADD COLUMN name text")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            gateway.execute("SELECT * FROM tasks.t")


def test_a_services_migrations_run_as_its_own_role(database: str, tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_things.sql").write_text("CREATE TABLE things (id int PRIMARY KEY);\n")
    urls = make_service_roles(database, services=["artifacts"])

    assert apply_migrations(urls["artifacts"], "artifacts", migrations) == ["0001_things"]
    assert apply_migrations(urls["artifacts"], "artifacts", migrations) == []


def test_relay_db_roles_keeps_each_password_in_its_secret(
    database: str, moto_endpoint: str
) -> None:
    env = f"r{uuid.uuid4().hex[:6]}"
    secrets = boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name="us-east-1")
    for service in DB_SERVICES:  # as Terraform makes them: empty
        secrets.create_secret(Name=password_secret_name(env, service))
    secrets.put_secret_value(SecretId=password_secret_name(env, "tasks"), SecretString="chosen-one")
    args = [
        "db",
        "roles",
        "--database-url",
        database,
        "--env",
        env,
        "--endpoint-url",
        moto_endpoint,
    ]

    first = CliRunner().invoke(relay, args)
    again = CliRunner().invoke(relay, args)

    assert first.exit_code == again.exit_code == 0, first.output
    assert "chosen-one" not in first.output + first.stderr
    stored = {
        service: secrets.get_secret_value(SecretId=password_secret_name(env, service))[
            "SecretString"
        ]
        for service in DB_SERVICES
    }
    assert stored["tasks"] == "chosen-one"  # a value there is kept
    assert len(set(stored.values())) == len(DB_SERVICES)  # an empty one got its own
    name = database.rsplit("/", 1)[1]
    # each role logs in (this server trusts local users; one that asks checks the password)
    for service, password in stored.items():
        url = database.replace("postgres@", f"{role_name(name, service)}:{password}@", 1)
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (role_name(name, service),)
