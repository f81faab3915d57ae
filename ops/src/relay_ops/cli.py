"""The `relay` command: the local stack (`up`, `demo`, `bootstrap`), the gateway's `admin`,
the services' database roles (`db`) and the dead-letter queues (`dlq`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import boto3
import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gateway.admin import app as gateway_admin_app
from relay_ops.console import PREFIX as CONSOLE_PREFIX
from relay_ops.console import ConsoleBuildError
from relay_ops.console import publish as publish_console
from relay_ops.db import app as db_app
from relay_ops.demo.flow import run_demo
from relay_ops.dlq import (
    DeadMessage,
    MissingQueue,
    QueueDepths,
    QueueNames,
    Target,
    declared_queues,
    peek,
    queue_depths,
    redrive,
    resolve_target,
    url_of,
)
from relay_ops.stack.config import CONSOLE_DIST, StackConfig, redact
from relay_ops.stack.environment import DUMMY_AWS_CREDENTIALS, console_link
from relay_ops.stack.errors import StackError
from relay_ops.stack.local import LocalStack, read_stack_file
from relay_ops.stack.report import show_failure
from relay_ops.stack.topology import bootstrap as bootstrap_topology
from relay_ops.traces import load_spans, render, task_traces

app = typer.Typer(
    help="Relay: run long AI-agent tasks. Operator CLI and local stack.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)
# `relay admin ...` is the gateway's own key commands (create-key, revoke-key, list-keys)
app.add_typer(gateway_admin_app, name="admin")
# `relay db roles`: each service's own database role on a deployment (docs/deploy.md)
app.add_typer(db_app, name="db")


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
    console.print(f"  console:    {console_link(config)}")
    console.print(f"  logs:       {config.log_dir}/<service>.log")
    console.print(f"  PostgreSQL: {stack.database.summary}")
    console.print(f"  Redis:      {stack.redis.summary}")
    console.print(f"  AWS (moto): {config.moto_endpoint}")
    console.print("  API key:    .venv/bin/relay admin create-key --tenant NAME")
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
def trace(
    task_id: Annotated[str, typer.Argument(help="The task's id.")],
    telemetry_dir: Annotated[
        Path | None,
        typer.Option(help="Where the services write spans; default: the local stack's."),
    ] = None,
) -> None:
    """Print a task's traces as indented trees: service, span, duration, X-Ray trace id.

    Reads the span files the local stack's services write (RELAY_TELEMETRY_DIR). On AWS, look
    the trace id up in X-Ray instead.
    """
    directory = telemetry_dir or StackConfig().telemetry_dir
    if not directory.is_dir():
        errors.print(f"No span files in {directory}: start the stack with `make up` first.")
        raise typer.Exit(1)
    found = task_traces(load_spans(directory), task_id)
    if not found:
        errors.print(
            f"No spans for task {task_id} in {directory} (spans are written about a second"
            " after they end)."
        )
        raise typer.Exit(1)
    for one in found:
        console.print(render(one))


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
            env or config.env,
            endpoint_url=endpoint,
            region=config.aws_region,
            bucket=bucket,
            console_origins=config.console_origins,
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


@app.command("console-deploy")
def console_deploy(
    bucket: Annotated[
        str,
        typer.Option(
            envvar="RELAY_CONSOLE_BUCKET",
            help="The frontend bucket (terraform output console_bucket).",
        ),
    ],
    distribution_id: Annotated[
        str | None,
        typer.Option(
            envvar="RELAY_CONSOLE_DISTRIBUTION_ID",
            help="The CloudFront distribution to invalidate (terraform output "
            "console_distribution_id); without it nothing is invalidated.",
        ),
    ] = None,
    dist: Annotated[
        Path, typer.Option(help="The build (npm run build in console/).")
    ] = CONSOLE_DIST,
    endpoint_url: Annotated[
        str | None, typer.Option(help="Another AWS endpoint (moto server); default: AWS.")
    ] = None,
) -> None:
    """Publish a console build: assets (cached a year), then index.html (no-cache), under
    console/ in the frontend bucket; then invalidate index.html on CloudFront. AWS credentials
    come from the standard chain (AWS_PROFILE, ...)."""
    console.print(f"Publishing {dist} to s3://{bucket}/{CONSOLE_PREFIX} …")
    try:
        published = publish_console(
            dist,
            bucket=bucket,
            distribution_id=distribution_id,
            s3=boto3.client("s3", endpoint_url=endpoint_url),
            cloudfront=(
                boto3.client("cloudfront", endpoint_url=endpoint_url) if distribution_id else None
            ),
            say=console.print,
        )
    except ConsoleBuildError as exc:
        errors.print(f"[bold red]console-deploy:[/] {exc}")
        raise typer.Exit(1) from exc
    except (BotoCoreError, ClientError) as exc:
        errors.print(f"[bold red]console-deploy failed:[/] {exc}")
        raise typer.Exit(1) from exc
    console.print(
        f"{len(published.uploaded)} files uploaded, {len(published.unchanged)} assets unchanged."
    )
    if published.invalidation_id:
        console.print(
            f"Invalidation {published.invalidation_id} of {', '.join(published.invalidated)} "
            f"on {distribution_id} (a minute or two)."
        )
    else:
        console.print("No distribution given: nothing invalidated.")


# --- relay dlq ------------------------------------------------------------------------------

dlq_app = typer.Typer(
    help="Inspect the dead-letter queues and move their messages back once the cause is fixed.",
    no_args_is_help=True,
)
app.add_typer(dlq_app, name="dlq")

EnvOption = Annotated[
    str | None,
    typer.Option(
        "--env",
        help="Deployment name (default RELAY_ENV, RELAY_STACK_ENV, the running stack's, 'local').",
    ),
]
EndpointOption = Annotated[
    str | None,
    typer.Option(
        "--endpoint-url",
        help="AWS endpoint (default RELAY_AWS_ENDPOINT_URL, else the running local stack's "
        "moto, else AWS itself; '' means AWS).",
    ),
]
QueueOption = Annotated[str, typer.Option("--queue", help="Which of the service's queues.")]
DeliveryOption = Annotated[
    bool,
    typer.Option(
        "--delivery", help="The delivery DLQ (events EventBridge could not deliver) instead."
    ),
]
BODY_EXCERPT_CHARS = 300


@dlq_app.command("list")
def dlq_list(env: EnvOption = None, endpoint_url: EndpointOption = None) -> None:
    """Every queue with its depth, the age of its oldest message and its two DLQs' depths."""
    target = _dlq_target(endpoint_url, env)
    with _aws_errors(target):
        depths = queue_depths(
            target.client("sqs"), target.client("cloudwatch"), declared_queues(target.env)
        )
    console.print(_depths_table(target, depths))
    missing = [name for row in depths for name in row.missing]
    if missing:
        errors.print(
            f"[bold red]{len(missing)} queues do not exist[/] ({', '.join(missing)}): "
            "a wrong --env, or run `relay bootstrap`."
        )
        raise typer.Exit(1)
    if any(row.dead or row.undeliverable for row in depths):
        console.print("Inspect with: relay dlq show SERVICE [--queue control] [--delivery]")


@dlq_app.command("show")
def dlq_show(
    service: Annotated[str, typer.Argument(help="The service whose DLQ to read.")],
    *,
    queue: QueueOption = "main",
    delivery: DeliveryOption = False,
    limit: Annotated[int, typer.Option(min=1, help="At most this many messages.")] = 20,
    env: EnvOption = None,
    endpoint_url: EndpointOption = None,
) -> None:
    """The dead messages, left where they are (each peek adds one to their receive count)."""
    target = _dlq_target(endpoint_url, env)
    names = _declared(target, service, queue)
    dead = names.dead(delivery=delivery)
    with _aws_errors(target):
        sqs = target.client("sqs")
        messages = peek(sqs, url_of(sqs, dead), limit=limit)
    console.print(f"[bold]{dead}[/]: {len(messages)} shown, left in the queue")
    for number, message in enumerate(messages, start=1):
        _print_dead_message(number, message)


@dlq_app.command("redrive")
def dlq_redrive(
    service: Annotated[str, typer.Argument(help="The service whose DLQ to move back.")],
    *,
    queue: QueueOption = "main",
    delivery: DeliveryOption = False,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Move at most this many (default: all).")
    ] = None,
    env: EnvOption = None,
    endpoint_url: EndpointOption = None,
) -> None:
    """Move dead messages back to the service's queue; fix their cause first."""
    target = _dlq_target(endpoint_url, env)
    names = _declared(target, service, queue)
    dead = names.dead(delivery=delivery)
    with _aws_errors(target), console.status(f"Moving {dead} back to {names.queue} …"):
        sqs = target.client("sqs")
        # a delivery DLQ's source is EventBridge, which SQS's move task does not accept
        result = redrive(
            sqs, url_of(sqs, dead), url_of(sqs, names.queue), limit=limit, move_task=not delivery
        )
    console.print(f"Moved {result.moved} from {dead} to {names.queue} ({result.method}).")
    if result.stopped:
        errors.print(f"[bold red]Stopped:[/] {result.stopped}. The rest are still in {dead}.")
        raise typer.Exit(1)


def _dlq_target(endpoint_url: str | None, env: str | None) -> Target:
    config = StackConfig()
    return resolve_target(
        endpoint_url=endpoint_url,
        env=env,
        stack=read_stack_file(config.stack_file),
        default_region=config.aws_region,
    )


def _declared(target: Target, service: str, queue: str) -> QueueNames:
    declared = {(q.service, q.kind): q for q in declared_queues(target.env)}
    if (service, queue) not in declared:
        known = ", ".join(f"{s} --queue {k}" for s, k in declared)
        errors.print(f"[bold red]No {queue} queue for {service!r}.[/] Queues: {known}")
        raise typer.Exit(2)
    return declared[(service, queue)]


@contextlib.contextmanager
def _aws_errors(target: Target) -> Iterator[None]:
    """AWS failures as one line naming where, and exit code 1."""
    where = redact(target.endpoint_url) if target.endpoint_url else f"AWS {target.region}"
    try:
        yield
    except MissingQueue as exc:
        errors.print(f"[bold red]No queue {exc} at {where}[/]: a wrong --env, or no bootstrap?")
        raise typer.Exit(1) from exc
    except (ClientError, BotoCoreError) as exc:
        errors.print(f"[bold red]AWS call failed at {where}:[/] {exc}")
        raise typer.Exit(1) from exc


def _depths_table(target: Target, depths: list[QueueDepths]) -> Table:
    where = redact(target.endpoint_url) if target.endpoint_url else f"AWS {target.region}"
    table = Table(title=f"Queues of env {target.env!r} at {where}", title_justify="left")
    for column in ("service", "queue", "waiting", "in flight", "oldest"):
        table.add_column(column, justify="left" if column in {"service", "queue"} else "right")
    table.add_column("DLQ", justify="right")
    table.add_column("delivery DLQ", justify="right")
    for row in depths:
        table.add_row(
            row.names.service,
            row.names.kind,
            _count(row.waiting),
            _count(row.in_flight),
            _age(row.oldest_age_seconds),
            _count(row.dead, alarm=True),
            _count(row.undeliverable, alarm=True),
        )
    return table


def _count(value: int | None, *, alarm: bool = False) -> str:
    if value is None:
        return "[red]missing[/]"
    return f"[bold red]{value}[/]" if alarm and value else str(value)


def _age(seconds: float | None) -> str:
    """CloudWatch's figure; moto publishes none, so locally it is always '-'."""
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _print_dead_message(number: int, message: DeadMessage) -> None:
    event = message.event
    first_sent = f"{message.first_sent:%Y-%m-%d %H:%M:%S} UTC" if message.first_sent else "?"
    console.print(
        f"[bold]{number}. {escape(event.get('detail-type', '(not an event)'))}[/]"
        f"  event {escape(event.get('event_id', '?'))}"
        f"  task {escape(event.get('task_id', '?'))}"
        f"  tenant {escape(event.get('tenant_id', '?'))}",
        highlight=False,
    )
    console.print(
        f"   receives {message.receive_count}  first sent {first_sent}"
        f"  message {message.message_id}",
        highlight=False,
    )
    if message.delivery_error:
        console.print(f"   not delivered: {escape(message.delivery_error)}", highlight=False)
    body = message.body
    excerpt = body if len(body) <= BODY_EXCERPT_CHARS else body[:BODY_EXCERPT_CHARS] + "…"
    console.print(f"   body {escape(excerpt)}", highlight=False)
