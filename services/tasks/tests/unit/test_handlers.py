"""Consuming lifecycle events: the handler registry, dispatch, and exactly-once effects."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID, uuid4

import pytest

from relay_ops.routing import load_routing
from relay_shared.consumer import EventDispatcher
from relay_shared.events import (
    TaskFailed,
    TaskFailedData,
    TaskProgressed,
    TaskProgressedData,
    TaskStarted,
    TaskStartedData,
    TaskSucceeded,
    TaskSucceededData,
    Usage,
)
from tasks.handlers import HANDLERS, event_dispatcher
from tasks.lifecycle import TaskStatus
from tasks.models import TaskRequest
from tasks.service import TaskService, UnknownTask

if TYPE_CHECKING:
    from .fakes import InMemoryTaskStore


def test_handlers_cover_exactly_what_routing_declares_for_tasks() -> None:
    assert set(HANDLERS) == set(load_routing().services["tasks"].consumes)


@pytest.fixture
def dispatcher(service: TaskService) -> EventDispatcher:
    return event_dispatcher(service)


async def a_task(service: TaskService, tenant: str = "acme") -> UUID:
    submission = await service.intake.submit(tenant, TaskRequest(prompt="hello"))
    return submission.task.id


async def test_a_lifecycle_runs_through_the_dispatcher(
    service: TaskService, store: InMemoryTaskStore, dispatcher: EventDispatcher
) -> None:
    task_id = await a_task(service)
    usage = Usage(input_tokens=3, output_tokens=4)
    await dispatcher.dispatch(
        TaskStarted.create(
            TaskStartedData(attempt=1, worker_id="w"), tenant_id="acme", task_id=task_id
        )
    )
    await dispatcher.dispatch(
        TaskProgressed.create(
            TaskProgressedData(attempt=1, step=1, message="m", usage=usage),
            tenant_id="acme",
            task_id=task_id,
        )
    )
    assert (store.tasks[task_id].state.status, store.tasks[task_id].state.usage) == (
        TaskStatus.RUNNING,
        usage,
    )
    await dispatcher.dispatch(
        TaskSucceeded.create(
            TaskSucceededData(attempt=1, steps=1, usage=usage, summary="done"),
            tenant_id="acme",
            task_id=task_id,
        )
    )
    state = store.tasks[task_id].state
    assert (state.status, state.summary) == (TaskStatus.SUCCEEDED, "done")
    assert state.started_at is not None
    assert state.finished_at is not None


async def test_the_same_event_delivered_twice_changes_nothing_the_second_time(
    service: TaskService, store: InMemoryTaskStore, dispatcher: EventDispatcher
) -> None:
    task_id = await a_task(service)
    progressed = TaskProgressed.create(
        TaskProgressedData(attempt=1, step=1, message="m", usage=Usage(input_tokens=1)),
        tenant_id="acme",
        task_id=task_id,
    )
    await dispatcher.dispatch(progressed)
    after_first = store.tasks[task_id]
    assert after_first.state.usage.input_tokens == 1
    await dispatcher.dispatch(progressed)
    assert store.tasks[task_id] == after_first  # updated_at included


async def test_a_late_terminal_event_does_not_change_a_finished_task(
    service: TaskService, store: InMemoryTaskStore, dispatcher: EventDispatcher
) -> None:
    task_id = await a_task(service)
    await dispatcher.dispatch(
        TaskFailed.create(
            TaskFailedData(attempt=1, code="boom", message="first"),
            tenant_id="acme",
            task_id=task_id,
        )
    )
    finished = store.tasks[task_id]
    await dispatcher.dispatch(
        TaskSucceeded.create(
            TaskSucceededData(attempt=2, summary="too late"), tenant_id="acme", task_id=task_id
        )
    )
    assert store.tasks[task_id] == finished
    assert finished.state.status is TaskStatus.FAILED


@pytest.mark.parametrize("tenant", ["acme", "globex"])
async def test_an_event_for_an_unknown_task_raises_and_is_not_claimed(
    service: TaskService, store: InMemoryTaskStore, dispatcher: EventDispatcher, tenant: str
) -> None:
    task_id = await a_task(service, tenant="acme")
    # a missing task, or the right id under another tenant: both are unknown here
    unknown = task_id if tenant == "globex" else uuid4()
    event = TaskStarted.create(
        TaskStartedData(attempt=1, worker_id="w"), tenant_id=tenant, task_id=unknown
    )
    with pytest.raises(UnknownTask):
        await dispatcher.dispatch(event)
    assert event.metadata.event_id not in store.handled  # so a redelivery tries again
    assert store.tasks[task_id].state.status is TaskStatus.QUEUED


async def test_an_event_already_handled_is_not_applied_again(
    service: TaskService, store: InMemoryTaskStore, dispatcher: EventDispatcher
) -> None:
    # The inbox alone must stop a repeat, even of an event the state machine would accept.
    task_id = await a_task(service)
    started = TaskStarted.create(
        TaskStartedData(attempt=1, worker_id="w"), tenant_id="acme", task_id=task_id
    )
    store.handled.add(started.metadata.event_id)
    await dispatcher.dispatch(started)
    assert store.tasks[task_id].state.status is TaskStatus.QUEUED
