"""The `relay` command: the local stack (`up`, `demo`, `bootstrap`) and the gateway's `admin`."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from gateway.admin import app as gateway_admin_app
from relay.demo.flow import run_demo
from relay.stack.config import StackConfig, redact
from relay.stack.environment import DUMMY_AWS_CREDENTIALS
from relay.stack.errors import StackError
from relay.stack.local import LocalStack, read_stack_file
from relay.stack.report import show_failure
from relay.stack.topology import bootstrap as bootstrap_topology

app = typer.Typer(
    help="Relay: run long AI-agent tasks. Operator CLI and local stack.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)
# `relay admin ...` is the gateway's own key commands (create-key, revoke-key, list-keys)
app.add_typer(gateway_admin_app, name="admin")


@app.callback()
def main(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand == "admin":
        _point_at_running_stack()


def _point_at_running_stack() -> None:
    """In another shell, `relay admin` reaches the stack that `relay up` started (its database
    may be a throwaway one on a random port). What the user set explicitly wins."""
    record = read_stack_file(StackConfig().stack_file)
    if record is None:
        return
    defaults = {
        "DATABASE_URL": record["database_url"],
        "REDIS_URL": record["redis_url"],
        "RELAY_ENV": record["env"],
        "RELAY_AWS_ENDPOINT_URL": record["moto_endpoint"],
        "RELAY_ARTIFACTS_BUCKET": record["bucket"],
        **DUMMY_AWS_CREDENTIALS,
    }
    for name, value in defaults.items():
        os.environ.setdefault(name, value)


@app.command()
def up(
    log_files: Annotated[
        bool,
        typer.Option(
            "--log-files",
            help="Write service logs only to files under the state dir, not the console.",
        ),
    ] = False,
) -> None:
    """Start the whole local stack and stream its logs; Ctrl-C stops it."""
    raise typer.Exit(asyncio.run(_up(StackConfig(), log_files=log_files)))


async def _up(config: StackConfig, *, log_files: bool) -> int:
    stack = LocalStack(config, console=None if log_files else console)
    stop = asyncio.Event()
    starting = asyncio.create_task(stack.start())

    def on_signal() -> None:
        if stop.is_set():  # asked twice: no more waiting
            console.print("[bold red]Killing everything now.[/]")
            stack.kill()
            return
        console.print("[bold]Stopping Relay … (again to kill)[/]")
        stop.set()
        starting.cancel()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        await starting
    except asyncio.CancelledError:  # interrupted while starting; start() stopped what it began
        console.print("Relay stopped before it was up.")
        return 130
    except StackError as exc:
        show_failure(errors, str(exc), stack, exc.services)
        return 1
    _announce(stack)
    await stop.wait()
    await stack.stop()
    console.print("Relay stopped.")
    return 0


def _announce(stack: LocalStack) -> None:
    config = stack.config
    assert stack.database is not None
    assert stack.redis is not None
    console.print(f"[bold green]Relay is up: {stack.gateway_url}[/]")
    console.print(f"  logs:       {config.log_dir}/<service>.log")
    console.print(f"  PostgreSQL: {stack.database.summary}")
    console.print(f"  Redis:      {stack.redis.summary}")
    console.print(f"  AWS (moto): {config.moto_endpoint}")
    console.print("  API key:    uv run relay admin create-key --tenant NAME")
    console.print("Press Ctrl-C to stop.")


@app.command()
def demo(
    output_dir: Annotated[
        Path, typer.Option(help="Where downloaded artifacts go (<dir>/<task_id>/<name>).")
    ] = Path("relay-output"),
    timeout: Annotated[
        float, typer.Option(help="Seconds the sample task may take, end to end.")
    ] = 180.0,
) -> None:
    """Run one sample task through the public API of a background stack, live.

    Starts the stack (logs to files), submits the task, shows its timeline as it happens,
    downloads and verifies its artifact, and stops the stack.
    """
    raise typer.Exit(
        asyncio.run(run_demo(StackConfig(), console, output_dir=output_dir, time_limit=timeout))
    )


@app.command()
def bootstrap(
    endpoint_url: Annotated[
        str | None,
        typer.Option(
            envvar="RELAY_AWS_ENDPOINT_URL",
            help="AWS endpoint (moto server); default: the local stack's moto.",
        ),
    ] = None,
    env: Annotated[
        str | None, typer.Option(help="Deployment name (default RELAY_STACK_ENV or 'local').")
    ] = None,
    bucket: Annotated[
        str | None, typer.Option(help="Artifacts bucket (default relay-<env>-artifacts).")
    ] = None,
) -> None:
    """Create or converge the bus, rules, queues and bucket on an endpoint; print a summary."""
    config = StackConfig()
    endpoint = endpoint_url or config.moto_endpoint
    for name, value in DUMMY_AWS_CREDENTIALS.items():
        os.environ.setdefault(name, value)  # moto takes any credentials
    try:
        topology = bootstrap_topology(
            env or config.env, endpoint_url=endpoint, region=config.aws_region, bucket=bucket
        )
    except Exception as exc:
        errors.print(f"[bold red]bootstrap failed at {redact(endpoint)}:[/] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"Topology for env {topology.env!r} at {endpoint}:")
    console.print(f"  bus     {topology.bus_arn}")
    console.print(f"  bucket  {topology.bucket}")
    for service, url in sorted(topology.queue_urls.items()):
        console.print(f"  queue   {service}: {url}")
    console.print(f"  rules   {len(topology.rules)}: {', '.join(sorted(topology.rules))}")
