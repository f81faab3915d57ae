"""The routing declaration (contracts/routing.yaml), parsed and checked."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

ROUTING_FILE = Path(__file__).resolve().parents[3] / "contracts" / "routing.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QueueSettings(_Strict):
    visibility_timeout_seconds: int = Field(ge=0, le=43200)
    max_receive_count: int = Field(ge=1, le=1000)
    message_retention_seconds: int = Field(ge=60, le=1209600)
    dlq_retention_seconds: int = Field(ge=60, le=1209600)


class QueueOverrides(_Strict):
    visibility_timeout_seconds: int | None = None
    max_receive_count: int | None = None
    message_retention_seconds: int | None = None
    dlq_retention_seconds: int | None = None


class RetryPolicy(_Strict):
    maximum_retry_attempts: int = Field(ge=0, le=185)
    maximum_event_age_seconds: int = Field(ge=60, le=86400)


class EventRoute(_Strict):
    producer: str


MAIN = "main"
# A second queue for events that must not wait behind long work in the main queue (a cancel
# must reach a worker whose every slot is busy running tasks).
CONTROL = "control"


class QueueRoutes(_Strict):
    consumes: list[str] = Field(default_factory=list)
    queue: QueueOverrides = Field(default_factory=QueueOverrides)


class ServiceRoutes(QueueRoutes):
    control: QueueRoutes | None = None

    def by_queue(self) -> dict[str, QueueRoutes]:
        queues: dict[str, QueueRoutes] = {MAIN: self} if self.consumes else {}
        if self.control is not None and self.control.consumes:
            queues[CONTROL] = self.control
        return queues

    def all_consumed(self) -> list[str]:
        return [event for routes in self.by_queue().values() for event in routes.consumes]


class Rule(_Strict):
    """One EventBridge rule: events from one producer that one consumer's queue subscribes to."""

    consumer: str
    producer: str
    events: tuple[str, ...]
    queue: str = MAIN

    def name(self, env: str) -> str:
        infix = "" if self.queue == MAIN else f"-{self.queue}"
        return f"relay-{env}-{self.consumer}{infix}-from-{self.producer}"

    def pattern(self) -> dict[str, list[str]]:
        return {"source": [f"relay.{self.producer}"], "detail-type": list(self.events)}


class Routing(_Strict):
    version: int
    events: dict[str, EventRoute]
    queue_defaults: QueueSettings
    target_retry_policy: RetryPolicy
    services: dict[str, ServiceRoutes]

    @model_validator(mode="after")
    def _consistent(self) -> Routing:
        for service, routes in self.services.items():
            consumed = routes.all_consumed()
            unknown = set(consumed) - set(self.events)
            if unknown:
                raise ValueError(f"{service} consumes undeclared events: {sorted(unknown)}")
            if len(consumed) != len(set(consumed)):
                raise ValueError(f"{service} consumes an event on two queues")
        for name, route in self.events.items():
            if route.producer not in self.services:
                raise ValueError(f"{name}: producer {route.producer!r} is not a service")
        return self

    def consumers(self) -> list[str]:
        """Services that have a main queue (they consume at least one event)."""
        return [name for name, routes in self.services.items() if routes.consumes]

    def queues(self) -> list[tuple[str, str]]:
        """Every (service, queue kind) that exists: main queues, then control queues."""
        return [
            (service, kind)
            for service, routes in self.services.items()
            for kind in routes.by_queue()
        ]

    def queue_settings(self, service: str, kind: str = MAIN) -> QueueSettings:
        overrides = self.services[service].by_queue()[kind].queue.model_dump(exclude_none=True)
        return self.queue_defaults.model_copy(update=overrides)

    def rules(self) -> list[Rule]:
        out: list[Rule] = []
        for consumer, routes in self.services.items():
            for kind, queue_routes in routes.by_queue().items():
                by_producer: dict[str, list[str]] = {}
                for event in queue_routes.consumes:
                    by_producer.setdefault(self.events[event].producer, []).append(event)
                out.extend(
                    Rule(consumer=consumer, producer=producer, events=tuple(events), queue=kind)
                    for producer, events in sorted(by_producer.items())
                )
        return out


def queue_name(env: str, service: str, kind: str = MAIN) -> str:
    return f"relay-{env}-{service}" + ("" if kind == MAIN else f"-{kind}")


def dlq_name(env: str, service: str, kind: str = MAIN) -> str:
    """Messages the service failed to process maxReceiveCount times."""
    return f"{queue_name(env, service, kind)}-dlq"


def delivery_dlq_name(env: str, service: str, kind: str = MAIN) -> str:
    """Events EventBridge could not deliver to the service's queue."""
    return f"{queue_name(env, service, kind)}-delivery-dlq"


def bus_name(env: str) -> str:
    return f"relay-{env}"


@cache
def load_routing(path: Path = ROUTING_FILE) -> Routing:
    return Routing.model_validate(yaml.safe_load(path.read_text()))
