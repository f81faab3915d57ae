"""What must hold after any fault: checked through the public API and the queues only."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import boto3
import psycopg
from psycopg import sql

from relay_devkit.api_client import PublicApi, TimelineEvent
from relay_ops.stack.process import RunningStack

TERMINAL = {"task.succeeded", "task.failed", "task.cancelled"}


@dataclass
class Findings:
    tasks: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    attempts: dict[int, int] = field(default_factory=dict)  # attempts per task -> tasks
    problems: list[str] = field(default_factory=list)


def timeline_problems(task_id: str, events: list[TimelineEvent]) -> list[str]:
    problems = []
    if [e.id for e in events] != list(range(1, len(events) + 1)):
        problems.append(f"{task_id}: seq not 1..n: {[e.id for e in events]}")
    terminals = [e for e in events if e.event in TERMINAL]
    if len(terminals) != 1:
        problems.append(f"{task_id}: {len(terminals)} terminal events")
    elif events[-1] is not terminals[0]:
        problems.append(f"{task_id}: terminal event is not last")
    if not events or events[0].event != "task.submitted":
        problems.append(f"{task_id}: does not start with task.submitted")
    steps: dict[int, list[int]] = {}
    first_step: dict[int, int] = {}  # an attempt resumed after an answer goes on after its step
    for event in events:
        data = event.data["data"]
        if event.event == "task.started" and data.get("resumed"):
            first_step[data["attempt"]] = data["resumed"]["step"] + 1
        if event.event == "task.progressed":
            steps.setdefault(data["attempt"], []).append(data["step"])
    # Each step once, none missing, in order: the notifier holds an early step until its
    # predecessor comes, however long an outage or a crash kept that one in a queue (ADR 0005).
    for attempt, numbers in steps.items():
        first = first_step.get(attempt, 1)
        if numbers != list(range(first, first + len(numbers))):
            problems.append(f"{task_id}: attempt {attempt} steps {numbers}")
    return problems


def artifact_problems(
    task_id: str, events: list[TimelineEvent], artifacts: list[dict[str, Any]]
) -> list[str]:
    """Every recorded artifact is on the timeline once, before the terminal event."""
    published = [e.data["data"]["artifact_id"] for e in events if e.event == "artifact.published"]
    missing = sorted(a["name"] for a in artifacts if a["id"] not in published)
    problems = [f"{task_id}: artifacts not on the timeline: {missing}"] if missing else []
    if len(published) != len(set(published)):
        problems.append(f"{task_id}: an artifact published twice on the timeline")
    return problems


async def check_tasks(
    api: PublicApi, task_ids: list[str], *, artifacts_per_task: int, within: float = 300
) -> Findings:
    """Every task terminal; each timeline 1..n with one terminal event, last; no artifact twice."""
    findings = Findings(tasks=len(task_ids))
    limit = asyncio.Semaphore(20)

    async def check(task_id: str) -> None:
        async with limit:
            task = await api.finished_task(task_id, within=within)
            findings.statuses[task["status"]] = findings.statuses.get(task["status"], 0) + 1
            events = await api.timeline(task_id, within=60)
            findings.problems += timeline_problems(task_id, events)
            started = [e for e in events if e.event == "task.started"]
            findings.attempts[len(started)] = findings.attempts.get(len(started), 0) + 1

            artifacts = await api.artifacts(task_id)
            names = [a["name"] for a in artifacts]
            if len(names) != len(set(names)) or len(names) != artifacts_per_task:
                findings.problems.append(f"{task_id}: artifacts {names}")
            if len({a["id"] for a in artifacts}) != len(artifacts):
                findings.problems.append(f"{task_id}: an artifact recorded twice")
            findings.problems += artifact_problems(task_id, events, artifacts)

    await asyncio.gather(*(check(t) for t in task_ids))
    return findings


def dead_letters(stack: RunningStack) -> dict[str, int]:
    """Depth of every DLQ and delivery DLQ of the stack's topology, by queue name."""
    sqs: Any = boto3.client("sqs", endpoint_url=stack.moto_endpoint, region_name="us-east-1")
    depths = {}
    prefix = f"relay-{stack.config.env}-"
    for url in sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", []):
        if url.endswith("-dlq"):
            attributes = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            depths[url.rsplit("/", 1)[-1]] = int(attributes["ApproximateNumberOfMessages"]) + int(
                attributes["ApproximateNumberOfMessagesNotVisible"]
            )
    return depths


def diagnose(stack: RunningStack, task_ids: list[str]) -> str:
    """Where stuck tasks are, for the failure message: the queues' dead letters, and each
    service's rows for the first few tasks (read straight from their schemas: diagnosis only,
    never an assertion)."""
    lines = [f"dead letters: {dead_letters(stack)}"]
    queries = {
        "tasks": "SELECT status, started_at, finished_at FROM tasks.tasks WHERE id = %s",
        "agent": "SELECT status, attempt, lease_expires_at, finished_at FROM agent.runs"
        " WHERE task_id = %s",
        "notifier": "SELECT seq, type FROM notifier.timeline_events WHERE task_id = %s"
        " ORDER BY seq",
        "notifier held": "SELECT type FROM notifier.held_events WHERE task_id = %s",
    }
    with psycopg.connect(stack.environment["DATABASE_URL"]) as conn:
        for schema in ("tasks", "agent", "artifacts", "notifier"):
            with contextlib.suppress(psycopg.Error):
                (pending,) = conn.execute(
                    sql.SQL("SELECT count(*) FROM {}.outbox WHERE published_at IS NULL").format(
                        sql.Identifier(schema)
                    )
                ).fetchone() or (0,)
                lines.append(f"{schema} outbox unpublished: {pending}")
            conn.rollback()
        for task_id in task_ids[:5]:
            for name, query in queries.items():
                rows: list[Any]
                try:
                    rows = conn.execute(query, (task_id,)).fetchall()
                except psycopg.Error as exc:
                    rows = [repr(exc)]
                    conn.rollback()
                lines.append(f"{task_id} {name}: {rows}")
    return "\n".join(lines)
