"""`relay db roles`: each service's PostgreSQL role on a deployment's database, as the local
stack makes them (relay_ops.stack.roles), with passwords kept in Secrets Manager: one secret per
service, `relay/<env>/database-<service>` (Terraform creates them empty; this command fills an
empty one with a new random password, and reuses one that has a value). Run it once per
environment with the master user (docs/deploy.md), and again after adding a service.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

import boto3
import typer
from botocore.exceptions import ClientError
from psycopg.conninfo import conninfo_to_dict

from relay_ops.stack.roles import DB_SERVICES, make_service_roles, role_name

app = typer.Typer(help="Database roles: one per service, owning its schema alone.")


def password_secret_name(env: str, service: str) -> str:
    return f"relay/{env}/database-{service}"


def _password(client: Any, secret_id: str) -> str:
    """The secret's password; a new one stored there if it has no value yet."""
    try:
        value = str(client.get_secret_value(SecretId=secret_id).get("SecretString") or "")
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        value = ""
    if value:
        return value
    value = secrets.token_urlsafe(32)
    client.put_secret_value(SecretId=secret_id, SecretString=value)
    return value


@app.command("roles")
def roles(
    database_url: Annotated[
        str,
        typer.Option(
            envvar="DATABASE_URL",
            help="The master user's connection (its password from PGPASSWORD, never the URL).",
        ),
    ],
    env: Annotated[str, typer.Option(envvar="RELAY_ENV", help="Deployment name.")],
    endpoint_url: Annotated[
        str | None, typer.Option(envvar="RELAY_AWS_ENDPOINT_URL", help="Secrets Manager endpoint.")
    ] = None,
) -> None:
    """Make or update each service's role with the password from its secret."""
    client = boto3.client("secretsmanager", endpoint_url=endpoint_url)
    passwords = {
        service: _password(client, password_secret_name(env, service)) for service in DB_SERVICES
    }
    urls = make_service_roles(database_url, DB_SERVICES, passwords)
    database = str(conninfo_to_dict(database_url).get("dbname") or "postgres")
    for service in urls:
        typer.echo(
            f"{role_name(database, service)}: owns schema {service}; password in "
            f"{password_secret_name(env, service)}",
            err=True,
        )
