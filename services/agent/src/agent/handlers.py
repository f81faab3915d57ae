"""What the agent consumes: event name -> handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

from agent.service import AgentService
from relay_shared.consumer import EventDispatcher
from relay_shared.events import TaskCancelRequested, TaskInputProvided, TaskSubmitted


async def on_task_submitted(service: AgentService, event: TaskSubmitted) -> None:
    # No inbox claim: the runs table is the dedupe (see repository._CLAIM), because a
    # half-finished run must be redone on redelivery while a finished one must not.
    await service.runner.run(event)


async def on_task_input_provided(service: AgentService, event: TaskInputProvided) -> None:
    # No inbox claim: the run's question and stored answer make a repeat a no-op, and let a
    # redelivery resume again a resumption whose worker died.
    await service.runner.resume(event)


async def on_task_cancel_requested(service: AgentService, event: TaskCancelRequested) -> None:
    # No inbox claim either: the run's cancel flag makes a repeated request a no-op.
    await service.cancellation.request(event)


HANDLERS: Mapping[str, Callable[[AgentService, Any], Awaitable[None]]] = {
    TaskSubmitted.name: on_task_submitted,
    TaskInputProvided.name: on_task_input_provided,
    TaskCancelRequested.name: on_task_cancel_requested,
}


def event_dispatcher(service: AgentService) -> EventDispatcher:
    return EventDispatcher({name: partial(handler, service) for name, handler in HANDLERS.items()})
