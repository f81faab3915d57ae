"""HANDLERS: event name -> handler, for every event this service consumes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

from artifacts.service import ArtifactService
from relay_shared.consumer import EventDispatcher
from relay_shared.events import ArtifactUploaded

Handler = Callable[[ArtifactService, Any], Awaitable[None]]


async def on_artifact_uploaded(service: ArtifactService, event: ArtifactUploaded) -> None:
    await service.publishing.handle_upload(event)


HANDLERS: Mapping[str, Handler] = {
    ArtifactUploaded.name: on_artifact_uploaded,
}


def event_dispatcher(service: ArtifactService) -> EventDispatcher:
    return EventDispatcher({name: partial(handler, service) for name, handler in HANDLERS.items()})
