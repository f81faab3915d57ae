"""What the notifier consumes: every client-visible event goes on its task's timeline.

``HANDLERS`` maps each event name to its handler; ``dispatcher`` binds them to the service.
The timeline's own dedupe (event ids appended, held or late) is the inbox: a repeat is a no-op.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from functools import partial

from notifier.service import Notifier
from relay_shared.consumer import EventDispatcher
from relay_shared.events import (
    ArtifactPublished,
    DomainEvent,
    TaskCancelled,
    TaskCancelRequested,
    TaskFailed,
    TaskInputProvided,
    TaskInputRequested,
    TaskProgressed,
    TaskStarted,
    TaskSubmitted,
    TaskSucceeded,
)

Handler = Callable[[Notifier, DomainEvent], Awaitable[None]]


async def record_on_timeline(notifier: Notifier, event: DomainEvent) -> None:
    await notifier.timelines.record(event)


HANDLERS: Mapping[str, Handler] = {
    TaskSubmitted.name: record_on_timeline,
    TaskCancelRequested.name: record_on_timeline,
    TaskStarted.name: record_on_timeline,
    TaskProgressed.name: record_on_timeline,
    TaskInputRequested.name: record_on_timeline,
    TaskInputProvided.name: record_on_timeline,
    TaskSucceeded.name: record_on_timeline,
    TaskFailed.name: record_on_timeline,
    TaskCancelled.name: record_on_timeline,
    ArtifactPublished.name: record_on_timeline,
}


def dispatcher(notifier: Notifier) -> EventDispatcher:
    return EventDispatcher({name: partial(handler, notifier) for name, handler in HANDLERS.items()})
