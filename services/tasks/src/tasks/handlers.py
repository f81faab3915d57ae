"""HANDLERS: each event the tasks service consumes -> its handler (see contracts/routing.yaml).

Every lifecycle event goes through the same use case; what each one does to a task is the
transition registered for it in ``lifecycle.TRANSITIONS``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from functools import partial

from relay_shared.consumer import EventDispatcher
from relay_shared.events import DomainEvent
from tasks.lifecycle import TRANSITIONS
from tasks.service import TaskService

Handler = Callable[[TaskService, DomainEvent], Awaitable[None]]


async def record_lifecycle_event(service: TaskService, event: DomainEvent) -> None:
    await service.lifecycle.record(event)


HANDLERS: Mapping[str, Handler] = {name: record_lifecycle_event for name in TRANSITIONS}


def event_dispatcher(service: TaskService) -> EventDispatcher:
    return EventDispatcher({name: partial(handler, service) for name, handler in HANDLERS.items()})
