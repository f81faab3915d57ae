"""``TaskTimeline``: one task's durable timeline as a pure aggregate (no I/O).

An offered event is appended (next seq) when its predecessors are in the timeline, held
otherwise, and recorded as late once the terminal event is in. Each append re-checks the held
events until none can be released. The store loads the aggregate under a row lock, and saves
``changes`` in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any
from uuid import UUID

from notifier.models import TimelineEvent
from notifier.ordering import Causality, causality
from relay_shared.events import DomainEvent


@dataclass(frozen=True)
class TimelineEntry:
    """An event offered to a timeline, with its causal place already worked out."""

    event_id: UUID
    task_id: UUID
    tenant_id: str
    type: str
    occurred_at: datetime
    data: Mapping[str, Any]
    causality: Causality
    traceparent: str | None = None  # the event's trace: its webhook deliveries continue it

    @classmethod
    def from_event(cls, event: DomainEvent) -> TimelineEntry:
        return cls(
            event_id=event.metadata.event_id,
            task_id=event.metadata.task_id,
            tenant_id=event.metadata.tenant_id,
            type=event.name,
            occurred_at=event.metadata.occurred_at,
            data=event.data.model_dump(mode="json"),
            causality=causality(event),
            traceparent=event.metadata.traceparent,
        )

    @property
    def terminal(self) -> bool:
        return self.causality.terminal


@dataclass(frozen=True)
class TimelineHead:
    """What a reader needs of a timeline before following it: its owner and its end."""

    tenant_id: str
    terminal_seq: int | None


@dataclass(frozen=True)
class HeldEntry:
    entry: TimelineEntry
    held_since: datetime


class Placement(Enum):
    APPEND = "append"
    HOLD = "hold"
    LATE = "late"


def release_order(held: HeldEntry) -> tuple[bool, datetime, str]:
    """Non-terminal before terminal, then by occurred_at (event id breaks ties)."""
    return (held.entry.terminal, held.entry.occurred_at, str(held.entry.event_id))


@dataclass
class TimelineChanges:
    """What an operation did, for the store to write and the caller to publish."""

    appended: list[TimelineEvent] = field(default_factory=list)
    newly_held: list[HeldEntry] = field(default_factory=list)
    released: list[UUID] = field(default_factory=list)  # previously stored held events
    late: list[TimelineEntry] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.appended or self.newly_held or self.released or self.late)


class TaskTimeline:
    def __init__(
        self,
        task_id: UUID,
        tenant_id: str,
        *,
        last_seq: int = 0,
        terminal_seq: int | None = None,
        provided: Iterable[str] = (),
        held: Iterable[HeldEntry] = (),
    ) -> None:
        self.task_id = task_id
        self.tenant_id = tenant_id
        self.last_seq = last_seq
        self.terminal_seq = terminal_seq
        self.provided: set[str] = set(provided)
        self.held: dict[UUID, HeldEntry] = {h.entry.event_id: h for h in held}
        self._stored_held = frozenset(self.held)
        self.changes = TimelineChanges()

    @property
    def ended(self) -> bool:
        return self.terminal_seq is not None

    def holds(self, event_id: UUID) -> bool:
        return event_id in self.held

    def placement(self, entry: TimelineEntry) -> Placement:
        if self.ended:
            return Placement.LATE
        if entry.causality.requires <= self.provided:
            return Placement.APPEND
        return Placement.HOLD

    def offer(self, entry: TimelineEntry, *, now: datetime) -> None:
        """Place a new event (the caller has checked it is not a repeat)."""
        placement = self.placement(entry)
        if placement is Placement.HOLD:
            held = HeldEntry(entry, now)
            self.held[entry.event_id] = held
            self.changes.newly_held.append(held)
        else:
            self._place(entry, placement)
            self._release_ready()

    def release_overdue(self, *, held_before: datetime) -> None:
        """Append events held since before ``held_before`` without their missing predecessors.

        A predecessor may never come (an artifact that failed verification, a lost event).
        Overdue events go in release order; when an overdue terminal event is among them,
        every other non-terminal held event goes first, since after the terminal it could
        only be recorded as late.
        """
        overdue = [h for h in self.held.values() if h.held_since <= held_before]
        if any(h.entry.terminal for h in overdue):
            overdue = [h for h in self.held.values() if h in overdue or not h.entry.terminal]
        ordered = sorted(overdue, key=release_order)
        # Non-terminal first, and no terminal released in between: it would make the rest late.
        for held in [h for h in ordered if not h.entry.terminal]:
            self._force(held.entry)
            self._release_ready(terminals=False)
        self._release_ready()
        for held in [h for h in ordered if h.entry.terminal]:
            self._force(held.entry)
            self._release_ready()

    def _force(self, entry: TimelineEntry) -> None:
        if entry.event_id in self.held:  # not already released by an earlier one
            self._unhold(entry.event_id)
            self._place(entry, Placement.LATE if self.ended else Placement.APPEND)

    def _place(self, entry: TimelineEntry, placement: Placement) -> None:
        if placement is Placement.LATE:
            self.changes.late.append(entry)
            return
        self.last_seq += 1
        self.provided |= entry.causality.provides
        if entry.terminal:
            self.terminal_seq = self.last_seq
        self.changes.appended.append(
            TimelineEvent(
                type=entry.type,
                seq=self.last_seq,
                task_id=entry.task_id,
                occurred_at=entry.occurred_at,
                data=dict(entry.data),
                event_id=entry.event_id,
                tenant_id=entry.tenant_id,
                traceparent=entry.traceparent,
            )
        )

    def _release_ready(self, *, terminals: bool = True) -> None:
        """Place held events whose predecessors are now in, one at a time, in release order."""
        while True:
            ready = [
                h
                for h in sorted(self.held.values(), key=release_order)
                if self.placement(h.entry) is not Placement.HOLD
                and (terminals or not h.entry.terminal)
            ]
            if not ready:
                return
            entry = ready[0].entry
            self._unhold(entry.event_id)
            self._place(entry, self.placement(entry))

    def _unhold(self, event_id: UUID) -> None:
        del self.held[event_id]
        if event_id in self._stored_held:
            self.changes.released.append(event_id)
        else:
            self.changes.newly_held = [
                h for h in self.changes.newly_held if h.entry.event_id != event_id
            ]
