"""The event paths for real: outbox -> EventBridge -> the agent's queue, and agent events on the
bus -> the tasks queue -> the consumer -> the task row. Plus exactly-once on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

import psycopg
import pytest

from relay_devkit.testing import eventually
from relay_ops.stack.topology import Topology
from relay_shared.aws import aws_client
from relay_shared.consumer import decode
from relay_shared.db import Database
from relay_shared.events import (
    DomainEvent,
    TaskFailed,
    TaskFailedData,
    TaskInputRequested,
    TaskInputRequestedData,
    TaskLimits,
    TaskProgressed,
    TaskProgressedData,
    TaskStarted,
    TaskStartedData,
    TaskSubmitted,
    TaskSucceeded,
    TaskSucceededData,
    Usage,
)
from relay_shared.migrations import KIT_INBOX, KIT_OUTBOX, migrate
from relay_shared.outbox import to_outbound
from relay_shared.publisher import EventBridgePublisher
from tasks.app import MIGRATIONS, build
from tasks.errors import TaskNotWaiting
from tasks.lifecycle import TaskState, TaskStatus
from tasks.models import InputRequest, TaskRequest
from tasks.ports import Claimed, Ports
from tasks.repository import PostgresTaskStore
from tasks.service import TaskService, UnknownTask
from tasks.settings import TasksSettings

if TYPE_CHECKING:
    from conftest import Headers, RunningTasks

pytestmark = pytest.mark.integration


async def test_submitted_task_reaches_the_agent_queue(
    tasks: RunningTasks,
    auth: Headers,
    tenant: str,
    settings: TasksSettings,
    topology: Topology,
    db: psycopg.AsyncConnection[Any],
) -> None:
    response = await tasks.http.post(
        "/internal/tasks",
        json={"prompt": "go", "model": "claude-haiku-4-5", "limits": {"max_turns": 3}},
        headers=auth(tenant),
    )
    task_id = UUID(response.json()["id"])
    received: list[DomainEvent] = []

    async with aws_client(settings, "sqs") as sqs:

        async def receive() -> list[DomainEvent]:
            answer = await sqs.receive_message(
                QueueUrl=topology.queue_urls["agent"], WaitTimeSeconds=1, MaxNumberOfMessages=10
            )
            received.extend(decode(m["Body"]) for m in answer.get("Messages", []))
            return received

        [event] = await eventually(receive, within=15)

    assert isinstance(event, TaskSubmitted)
    assert (event.metadata.task_id, event.metadata.tenant_id) == (task_id, tenant)
    assert (event.data.prompt, event.data.model) == ("go", "claude-haiku-4-5")
    assert event.data.limits == TaskLimits(
        max_turns=3,
        max_output_tokens=32000,
        max_wall_seconds=1800,
        max_cost_usd=None,
        max_wait_seconds=86400,
    )

    async def outbox() -> list[dict[str, Any]]:
        cur = await db.execute("SELECT event_id, published_at FROM outbox")
        return await cur.fetchall()

    # the relay marks the row after PutEvents returns, in its own transaction: poll for it
    [row] = await eventually(outbox, until=lambda rows: rows[0]["published_at"] is not None)
    assert row["event_id"] == event.metadata.event_id


async def test_agent_events_on_the_bus_drive_the_task_to_its_end(
    tasks: RunningTasks,
    auth: Headers,
    tenant: str,
    settings: TasksSettings,
    topology: Topology,
    db: psycopg.AsyncConnection[Any],
) -> None:
    response = await tasks.http.post("/internal/tasks", json={"prompt": "go"}, headers=auth(tenant))
    task_id = UUID(response.json()["id"])
    url = f"/internal/tasks/{task_id}"

    async def task() -> dict[str, Any]:
        answer: dict[str, Any] = (await tasks.http.get(url, headers=auth(tenant))).json()
        return answer

    usage = Usage(input_tokens=120, output_tokens=30, cache_read_input_tokens=5)
    started = TaskStarted.create(
        TaskStartedData(attempt=1, worker_id="w-1"), tenant_id=tenant, task_id=task_id
    )
    progressed = TaskProgressed.create(
        TaskProgressedData(attempt=1, step=1, message="thinking", usage=usage, cost_usd=0.12),
        tenant_id=tenant,
        task_id=task_id,
        caused_by=started.metadata,
    )
    succeeded = TaskSucceeded.create(
        TaskSucceededData(
            attempt=1, steps=1, usage=usage, cost_usd=0.125, summary="wrote result.md"
        ),
        tenant_id=tenant,
        task_id=task_id,
        caused_by=started.metadata,
    )

    async with aws_client(settings, "events") as events, aws_client(settings, "sqs") as sqs:
        publisher = EventBridgePublisher(events, settings.event_bus_name)

        async def publish(*batch: DomainEvent) -> None:
            outcome = await publisher.publish([to_outbound(e) for e in batch])
            assert outcome.failed == {}

        # one at a time: SQS does not keep order, and these steps check each transition
        await publish(started)
        running = await eventually(task, until=lambda t: t["status"] == "running")
        assert running["started_at"] is not None
        await publish(progressed)
        await eventually(
            task, until=lambda t: t["usage"] == {**usage.model_dump(), "cost_usd": 0.12}
        )
        await publish(succeeded)
        done = await eventually(task, until=lambda t: t["status"] == "succeeded")
        assert done["result"] == {"summary": "wrote result.md"}
        assert done["usage"]["cost_usd"] == 0.125
        assert done["error"] is None
        assert done["finished_at"] is not None
        assert done["started_at"] == running["started_at"]

        # a redelivered event and a late terminal one: both handled, neither changes the task
        cur = await db.execute("SELECT * FROM tasks WHERE id = %s", (task_id,))
        finished_row = await cur.fetchone()
        late = TaskFailed.create(
            TaskFailedData(attempt=1, code="late", message="too late"),
            tenant_id=tenant,
            task_id=task_id,
        )
        await publish(progressed, late)

        async def late_claimed() -> bool:
            cur = await db.execute(
                "SELECT 1 FROM inbox WHERE event_id = %s", (late.metadata.event_id,)
            )
            return await cur.fetchone() is not None

        async def queue_drained() -> bool:
            attrs = await sqs.get_queue_attributes(
                QueueUrl=topology.queue_urls["tasks"],
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )
            return all(v == "0" for v in attrs["Attributes"].values())

        await eventually(late_claimed)
        await eventually(queue_drained)
        cur = await db.execute("SELECT * FROM tasks WHERE id = %s", (task_id,))
        assert await cur.fetchone() == finished_row
        cur = await db.execute("SELECT count(*) AS n FROM inbox")
        assert (await cur.fetchone())["n"] == 4


@pytest.fixture
async def service_on_postgres(database_url: str, db_schema: str) -> AsyncIterator[TaskService]:
    """The use cases on PostgreSQL alone: no HTTP, no AWS."""
    settings = TasksSettings(database_url=database_url, db_schema=db_schema)
    await migrate(settings, KIT_OUTBOX, KIT_INBOX, MIGRATIONS)
    database = Database(database_url, db_schema)
    await database.open()
    try:
        yield build(settings, Ports(store=PostgresTaskStore(database)))
    finally:
        await database.close()


@pytest.mark.parametrize("kind", ["started", "progressed", "failed"])
async def test_an_event_delivered_twice_changes_nothing_the_second_time(
    service_on_postgres: TaskService, db: psycopg.AsyncConnection[Any], kind: str
) -> None:
    service = service_on_postgres
    submission = await service.intake.submit("acme", TaskRequest(prompt="hi"))
    task_id = submission.task.id
    event: DomainEvent = {
        "started": lambda: TaskStarted.create(
            TaskStartedData(attempt=1, worker_id="w"), tenant_id="acme", task_id=task_id
        ),
        "progressed": lambda: TaskProgressed.create(
            TaskProgressedData(attempt=1, step=1, message="m", usage=Usage(output_tokens=9)),
            tenant_id="acme",
            task_id=task_id,
        ),
        "failed": lambda: TaskFailed.create(
            TaskFailedData(attempt=1, code="boom", message="it broke"),
            tenant_id="acme",
            task_id=task_id,
        ),
    }[kind]()

    async def row() -> dict[str, Any] | None:
        cur = await db.execute("SELECT * FROM tasks WHERE id = %s", (task_id,))
        return await cur.fetchone()

    before = await row()
    await service.lifecycle.record(event)
    after_first = await row()
    assert after_first != before  # the first delivery did change the task
    await service.lifecycle.record(event)
    assert await row() == after_first


async def test_an_event_already_in_the_inbox_is_not_applied_again(
    service_on_postgres: TaskService, db: psycopg.AsyncConnection[Any]
) -> None:
    # The inbox alone must stop a repeat, even of an event the state machine would accept.
    submission = await service_on_postgres.intake.submit("acme", TaskRequest(prompt="hi"))
    started = TaskStarted.create(
        TaskStartedData(attempt=1, worker_id="w"), tenant_id="acme", task_id=submission.task.id
    )
    await db.execute(
        "INSERT INTO inbox (subscriber, event_id, event_type) VALUES ('tasks', %s, %s)",
        (started.metadata.event_id, started.name),
    )
    await service_on_postgres.lifecycle.record(started)
    task = await service_on_postgres.queries.get("acme", submission.task.id)
    assert task.state.status == "queued"


async def test_sql_refuses_to_change_a_terminal_task(
    service_on_postgres: TaskService, database_url: str, db_schema: str
) -> None:
    # The guard in the UPDATE holds even for a caller that skips the state machine.
    submission = await service_on_postgres.intake.submit("acme", TaskRequest(prompt="hi"))
    task_id = submission.task.id
    await service_on_postgres.lifecycle.record(
        TaskFailed.create(
            TaskFailedData(attempt=0, code="boom", message="m"), tenant_id="acme", task_id=task_id
        )
    )
    database = Database(database_url, db_schema)
    await database.open()
    try:
        async with PostgresTaskStore(database).transaction() as tx:
            assert not await tx.save_state("acme", task_id, TaskState(status=TaskStatus.RUNNING))
    finally:
        await database.close()
    task = await service_on_postgres.queries.get("acme", task_id)
    assert task.state.status is TaskStatus.FAILED


async def test_an_event_for_another_tenants_task_is_refused_and_not_claimed(
    service_on_postgres: TaskService, db: psycopg.AsyncConnection[Any]
) -> None:
    submission = await service_on_postgres.intake.submit("acme", TaskRequest(prompt="hi"))
    foreign = TaskStarted.create(
        TaskStartedData(attempt=1, worker_id="w"), tenant_id="other", task_id=submission.task.id
    )
    with pytest.raises(UnknownTask):
        await service_on_postgres.lifecycle.record(foreign)
    cur = await db.execute(
        "SELECT count(*) AS n FROM inbox WHERE event_id = %s", (foreign.metadata.event_id,)
    )
    assert await cur.fetchone() == {"n": 0}  # rolled back: a retry meets the same answer
    task = await service_on_postgres.queries.get("acme", submission.task.id)
    assert task.state.status == "queued"


async def test_the_claim_locks_the_task_until_commit_and_the_next_one_reads_what_it_saved(
    service_on_postgres: TaskService, database_url: str, db_schema: str
) -> None:
    """Two lifecycle events of one task in two transactions: the second's claim waits for the
    first's commit and then reads the state the first saved, not the one from before."""
    submission = await service_on_postgres.intake.submit("acme", TaskRequest(prompt="hi"))
    task_id = submission.task.id
    started = TaskStarted.create(
        TaskStartedData(attempt=1, worker_id="w"), tenant_id="acme", task_id=task_id
    )
    progressed = TaskProgressed.create(
        TaskProgressedData(attempt=1, step=1, message="m", usage=Usage(output_tokens=9)),
        tenant_id="acme",
        task_id=task_id,
    )
    database = Database(database_url, db_schema)
    await database.open()
    store = PostgresTaskStore(database)
    try:
        async with store.transaction() as first:
            claimed = await first.claim_locking(started)
            assert claimed.first
            assert claimed.state is not None
            assert claimed.state.status is TaskStatus.QUEUED
            await first.save_state("acme", task_id, TaskState(status=TaskStatus.RUNNING))

            async def second() -> Claimed:
                async with store.transaction() as tx:
                    return await tx.claim_locking(progressed)

            waiting = asyncio.create_task(second())
            await asyncio.sleep(0.5)
            assert not waiting.done()  # held by the first transaction's lock
        claimed = await asyncio.wait_for(waiting, 5)
        assert claimed.first
        assert claimed.state is not None
        assert claimed.state.status is TaskStatus.RUNNING
        async with store.transaction() as again:
            assert await again.claim_locking(progressed) == Claimed(first=False)
    finally:
        await database.close()


async def test_an_early_answer_waits_without_the_row_lock_while_the_consumer_records_its_question(
    service_on_postgres: TaskService, db: psycopg.AsyncConnection[Any]
) -> None:
    """The answer names a question the row lacks: it waits, and must not hold the row's lock
    meanwhile, or the consumer could not apply the question it waits for (on PostgreSQL)."""
    service = service_on_postgres
    task_id = (await service.intake.submit("acme", TaskRequest(prompt="hi"))).task.id
    await service.lifecycle.record(
        TaskStarted.create(
            TaskStartedData(attempt=1, worker_id="w"), tenant_id="acme", task_id=task_id
        )
    )
    question_id = uuid4()
    asked = TaskInputRequested.create(
        TaskInputRequestedData(attempt=1, step=1, question_id=question_id, question="Which zone?"),
        tenant_id="acme",
        task_id=task_id,
    )

    async def question_arrives_later() -> None:
        await asyncio.sleep(0.3)
        async with asyncio.timeout(5):  # a lock held by the waiting answer would stop it here
            await service.lifecycle.record(asked)

    answered, _ = await asyncio.gather(
        service.input.provide("acme", task_id, InputRequest(text="b", question_id=question_id)),
        question_arrives_later(),
    )

    assert answered.state.status is TaskStatus.RUNNING
    cur = await db.execute("SELECT answered_question_id FROM tasks WHERE id = %s", (task_id,))
    assert (await cur.fetchone())["answered_question_id"] == question_id
    with pytest.raises(TaskNotWaiting):  # the same question again: refused, nothing waits
        await service.input.provide(
            "acme", task_id, InputRequest(text="c", question_id=question_id)
        )
