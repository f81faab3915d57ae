"""``relay-client``: the Relay API from a shell, on the Python client.

Where to connect: ``--url``/``--api-key``, else ``RELAY_URL``/``RELAY_API_KEY``, else the profile
file (``relay-client configure`` writes it, mode 0600). Exit codes: 0 done, 1 the task failed or
was cancelled, 2 a usage error, 3 the API refused the call or could not be reached.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import Annotated, Any, get_args

try:
    import typer
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise SystemExit("the CLI needs its extra: pip install 'relay-client[cli]'") from exc

from pydantic import BaseModel

from relay_client._client import Relay
from relay_client.errors import RelayError
from relay_client.models import TaskStatus, TimelineEvent

TASK_FAILED, API_ERROR = 1, 3
INPUT_REQUESTED = "task.input_requested"
PROFILE_ENV = "RELAY_PROFILE_FILE"

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
tasks_app = typer.Typer(help="Submit, list, follow, answer and cancel tasks.", no_args_is_help=True)
artifacts_app = typer.Typer(help="A task's files.", no_args_is_help=True)
webhooks_app = typer.Typer(help="Webhook endpoints and their deliveries.", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")
app.add_typer(artifacts_app, name="artifacts")
app.add_typer(webhooks_app, name="webhooks")

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (one object per line).")]


class Connection:
    url: str | None = None
    api_key: str | None = None
    profile: str = "default"


@app.callback()
def connect(
    url: Annotated[str | None, typer.Option(help="The API, e.g. http://127.0.0.1:8000.")] = None,
    api_key: Annotated[str | None, typer.Option(help="An API key (better: RELAY_API_KEY).")] = None,
    profile: Annotated[str, typer.Option(help="The profile to read.")] = "default",
) -> None:
    Connection.url, Connection.api_key, Connection.profile = url, api_key, profile


def profile_file() -> Path:
    return Path(os.environ.get(PROFILE_ENV) or Path.home() / ".config" / "relay" / "profiles.json")


def _profiles() -> dict[str, dict[str, str]]:
    path = profile_file()
    if not path.exists():
        return {}
    profiles: dict[str, dict[str, str]] = json.loads(path.read_text())
    return profiles


@contextmanager
def client() -> Iterator[Relay]:
    stored = _profiles().get(Connection.profile, {})
    url = Connection.url or os.environ.get("RELAY_URL") or stored.get("url")
    key = Connection.api_key or os.environ.get("RELAY_API_KEY") or stored.get("api_key")
    if not key:
        err.print("No API key: set RELAY_API_KEY, pass --api-key, or run `relay-client configure`.")
        raise typer.Exit(2)
    try:
        with Relay(url, key) as relay:
            yield relay
    except RelayError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(API_ERROR) from exc


def emit(value: BaseModel | list[Any] | dict[str, Any]) -> None:
    if isinstance(value, BaseModel):
        print(value.model_dump_json())
    else:
        print(json.dumps(value, default=str))


@app.command()
def configure(
    url: Annotated[str, typer.Option(prompt=True, help="The API's base URL.")],
    api_key: Annotated[str, typer.Option(prompt=True, hide_input=True, help="The API key.")],
    profile: Annotated[str, typer.Option(help="The profile's name.")] = "default",
) -> None:
    """Save a URL and key in the profile file (only you may read it: mode 0600)."""
    path = profile_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    profiles = _profiles() | {profile: {"url": url, "api_key": api_key}}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump(profiles, file, indent=2)
    os.chmod(path, 0o600)  # an older file keeps its mode through O_CREAT
    out.print(f"Saved profile {profile!r} to {path}")


# --- tasks -----------------------------------------------------------------------------------


@tasks_app.command("submit")
def submit(  # noqa: PLR0917 - typer passes each option as an argument
    prompt: Annotated[str, typer.Argument(help="What the agent should do.")],
    model: Annotated[str | None, typer.Option(help="A model from the allowed list.")] = None,
    metadata: Annotated[
        list[str] | None, typer.Option("--metadata", "-m", help="KEY=VALUE, repeatable.")
    ] = None,
    max_turns: Annotated[int | None, typer.Option(help="Model calls allowed.")] = None,
    max_cost_usd: Annotated[float | None, typer.Option(help="Spend allowed, in USD.")] = None,
    max_wait_seconds: Annotated[
        float | None, typer.Option(help="How long a question may wait for your answer.")
    ] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="Makes a retry safe.")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Watch it to the end.")] = False,
    download: Annotated[
        Path | None, typer.Option(help="Save its artifacts here when it ends (implies --follow).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Submit a task; with --follow, show its progress live and exit 1 if it does not succeed.
    When it asks a question, --follow shows it and keeps following: answer with `tasks input`."""
    pairs = dict(_pair(item) for item in metadata or [])
    limits = {
        "max_turns": max_turns,
        "max_cost_usd": max_cost_usd,
        "max_wait_seconds": max_wait_seconds,
    }
    with client() as relay:
        task = relay.tasks.create(
            prompt,
            model=model,
            metadata=pairs or None,
            limits={k: v for k, v in limits.items() if v is not None} or None,
            idempotency_key=idempotency_key,
        )
        if as_json:
            emit(task)
        else:
            out.print(f"Submitted [bold]{task.id}[/] ({task.model})")
        if not (follow or download):
            return
        _follow(relay, str(task.id), as_json)
        final = relay.tasks.get(task.id)
        while not final.done:  # the record follows the timeline's end by a moment
            time.sleep(0.2)
            final = relay.tasks.get(task.id)
        if download is not None:
            download.mkdir(parents=True, exist_ok=True)
            for artifact in relay.artifacts.list(final.id):
                path = relay.artifacts.download(final.id, artifact.id, download)
                if not as_json:
                    out.print(f"Saved {escape(str(path))} ({artifact.size} bytes, sha256 checked)")
        if as_json:
            emit(final)
        else:
            _say_end(final.status, final.error.message if final.error else None)
    if final.status != "succeeded":
        raise typer.Exit(TASK_FAILED)


def _pair(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--metadata")
    return key, value


def _follow(relay: Relay, task_id: str, as_json: bool) -> None:
    if as_json:
        for event in relay.tasks.events(task_id):
            emit(event)
        return
    with err.status("waiting for the first event…") as status:
        for event in relay.tasks.events(task_id):
            _show(event)
            status.update(_progress(event))


def _show(event: TimelineEvent) -> None:
    """One event as a line; a question also as what it asks and how to answer it."""
    out.print(_line(event))
    if event.type == INPUT_REQUESTED:
        question = str(event.data.get("question", ""))
        # soft_wrap: the command stays one line to copy, however narrow the terminal
        out.print(f"  [bold yellow]? {escape(question)}[/]", soft_wrap=True)
        hint = f'    answer it: relay-client tasks input {event.task_id} "<answer>"'
        out.print(hint, markup=False, soft_wrap=True)


def _line(event: TimelineEvent) -> str:
    data = event.data
    detail = (
        data.get("message")
        or data.get("summary")
        or data.get("name")
        or data.get("question")
        or data.get("text")
        or ""
    )
    if event.type == "task.started" and data.get("resumed"):
        detail = "resumed after the answer"
    return f"  [dim]#{event.seq:<3}[/] {event.type:<22} {escape(str(detail))[:100]}"


def _progress(event: TimelineEvent) -> str:
    if event.type == INPUT_REQUESTED:
        return "waiting for your answer (relay-client tasks input)"
    usage = event.data.get("usage") or {}
    tokens = usage.get("input_tokens", 0) + usage.get("output_tokens", 0)
    cost = event.data.get("cost_usd")
    parts = [event.type.removeprefix("task.")]
    if tokens:
        parts.append(f"{tokens:,} tokens")
    if cost:
        parts.append(f"${cost:.4f}")
    return " · ".join(parts)


def _say_end(status: str, message: str | None) -> None:
    colour = {"succeeded": "green", "failed": "red"}.get(status, "yellow")
    suffix = f": {escape(message)}" if message else ""
    out.print(f"[bold {colour}]{status}[/]{suffix}")


@tasks_app.command("ls")
def list_tasks(
    status: Annotated[str | None, typer.Option(help="Only tasks in this status.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Your tasks, newest first."""
    with client() as relay:
        tasks = relay.tasks.list(status=_status(status), page_size=min(limit, 100))
        found = list(islice(tasks, limit))  # pages are fetched only as far as needed
    if as_json:
        for task in found:
            emit(task)
        return
    table = Table("id", "status", "created", "prompt", box=None)
    for task in found:
        table.add_row(
            str(task.id),
            task.status,
            f"{task.created_at:%Y-%m-%d %H:%M:%S}",
            escape(task.prompt.splitlines()[0][:60] if task.prompt else ""),
        )
    out.print(table)


def _status(value: str | None) -> TaskStatus | None:
    allowed: tuple[str, ...] = get_args(TaskStatus)
    if value is not None and value not in allowed:
        raise typer.BadParameter(f"one of {', '.join(allowed)}", param_hint="--status")
    return value  # type: ignore[return-value]  # checked above


@tasks_app.command("get")
def get_task(task_id: str, as_json: JsonOption = False) -> None:
    """One task: status, usage, result or error."""
    with client() as relay:
        task = relay.tasks.get(task_id)
    if as_json:
        emit(task)
        return
    out.print(f"[bold]{task.id}[/]  {task.status}  {task.model}")
    out.print(f"  usage: {task.usage.input_tokens:,} in / {task.usage.output_tokens:,} out, "
              f"${task.usage.cost_usd:.4f}")  # fmt: skip
    if task.question:
        out.print(f"  [bold yellow]asks: {escape(task.question.text)}[/]")
        hint = f'  answer it: relay-client tasks input {task.id} "<answer>"'
        out.print(hint, markup=False, soft_wrap=True)
    if task.result:
        out.print(f"  result: {escape(task.result.summary)}")
    if task.error:
        out.print(f"  error: {task.error.code}: {escape(task.error.message)}")


@tasks_app.command("cancel")
def cancel_task(
    task_id: str,
    reason: Annotated[str | None, typer.Option(help="Why, for the timeline.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Ask a task to stop (it ends `cancelled`)."""
    with client() as relay:
        task = relay.tasks.cancel(task_id, reason=reason)
    if as_json:
        emit(task)
    else:
        out.print(f"{task.id}: {task.status}")


@tasks_app.command("input")
def answer_task(
    task_id: str,
    text: Annotated[str, typer.Argument(help="Your answer; - reads it from stdin.")],
    question_id: Annotated[
        str | None, typer.Option(help="Answer only this question (refused if it is not pending).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Answer the question a task waits on (status waiting_for_input); the task carries on."""
    if text == "-":
        text = sys.stdin.read().removesuffix("\n")  # `echo ANSWER |` adds one
    if not text.strip():
        raise typer.BadParameter("the answer is empty", param_hint="TEXT")
    with client() as relay:
        task = relay.tasks.input(task_id, text, question_id=question_id)
    if as_json:
        emit(task)
    else:
        out.print(f"{task.id}: answered; {task.status}")


@tasks_app.command("events")
def task_events(
    task_id: str,
    after: Annotated[int, typer.Option(help="Only events after this seq.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """The task's timeline, then live until it ends."""
    with client() as relay:
        for event in relay.tasks.events(task_id, after=after):
            emit(event) if as_json else _show(event)


# --- artifacts -------------------------------------------------------------------------------


@artifacts_app.command("ls")
def list_artifacts(task_id: str, as_json: JsonOption = False) -> None:
    """A task's artifacts."""
    with client() as relay:
        artifacts = relay.artifacts.list(task_id)
    if as_json:
        for artifact in artifacts:
            emit(artifact)
        return
    table = Table("id", "name", "type", "bytes", box=None)
    for a in artifacts:
        table.add_row(str(a.id), escape(a.name), a.content_type, f"{a.size:,}")
    out.print(table)


@artifacts_app.command("get")
def get_artifact(
    task_id: str,
    artifact_id: str,
    to: Annotated[Path, typer.Option(help="A folder, or a file name.")] = Path("."),
) -> None:
    """Download an artifact, checked against its sha256."""
    with client() as relay:
        path = relay.artifacts.download(task_id, artifact_id, to)
    out.print(f"Saved {escape(str(path))}")


# --- webhooks --------------------------------------------------------------------------------


@webhooks_app.command("ls")
def list_webhooks(as_json: JsonOption = False) -> None:
    """Your webhook endpoints."""
    with client() as relay:
        endpoints = relay.webhooks.list()
    if as_json:
        for endpoint in endpoints:
            emit(endpoint)
        return
    table = Table("id", "url", "events", "enabled", box=None)
    for e in endpoints:
        table.add_row(str(e.id), escape(e.url), ",".join(e.event_types), str(e.enabled).lower())
    out.print(table)


@webhooks_app.command("create")
def create_webhook(
    url: str,
    event: Annotated[
        list[str] | None, typer.Option("--event", "-e", help="An event name; all if none.")
    ] = None,
    description: Annotated[str, typer.Option(help="For you.")] = "",
    as_json: JsonOption = False,
) -> None:
    """Add an endpoint; prints its signing secret, shown only this once."""
    with client() as relay:
        endpoint = relay.webhooks.create(url, event_types=event, description=description)
    if as_json:
        emit(endpoint)
    else:
        out.print(f"Created {endpoint.id}; its signing secret (shown only now): {endpoint.secret}")


@webhooks_app.command("delete")
def delete_webhook(webhook_id: str) -> None:
    """Remove an endpoint."""
    with client() as relay:
        relay.webhooks.delete(webhook_id)
    out.print(f"Deleted {webhook_id}")


@webhooks_app.command("test")
def test_webhook(webhook_id: str) -> None:
    """Send a `webhook.test` event to an endpoint."""
    with client() as relay:
        queued = relay.webhooks.test(webhook_id)
    out.print(f"Queued a test delivery (webhook-id {queued.event_id})")


@webhooks_app.command("deliveries")
def list_deliveries(
    webhook_id: str,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """An endpoint's deliveries, newest first."""
    with client() as relay:
        deliveries = relay.webhooks.deliveries(webhook_id, page_size=min(limit, 100))
        found = list(islice(deliveries, limit))
    if as_json:
        for delivery in found:
            emit(delivery)
        return
    table = Table("event", "seq", "status", "attempts", "last HTTP", box=None)
    for d in found:
        table.add_row(d.type, str(d.seq or ""), d.status, str(d.attempts),
                      str(d.last_status_code or ""))  # fmt: skip
    out.print(table)


def main() -> None:
    app(prog_name="relay-client")


if __name__ == "__main__":
    main()
