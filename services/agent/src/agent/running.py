"""The attempts this process is running, by task: where a cancel request or a lost lease finds
the work to stop.

Each attempt's work is its own asyncio task (model calls, retries, tools), so stopping it is
one ``cancel()`` that interrupts whatever it awaits: the model stream closes, a tool's await
ends. The handler that awaits the work tells the causes apart by ``stop``: set here, the
attempt was stopped on purpose; unset while the handler itself is being cancelled, the
process is shutting down.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from uuid import UUID

from opentelemetry import metrics

log = logging.getLogger(__name__)

ATTEMPTS_RUNNING = metrics.get_meter("relay").create_up_down_counter(
    "relay.agent.attempts.running",
    unit="{attempt}",
    description="Attempts this process runs now; a task waiting for input holds none.",
)


class StopCause(enum.Enum):
    CANCEL_REQUESTED = "cancel requested"
    LEASE_LOST = "lease lost"


@dataclass
class RunningAttempt:
    task_id: UUID
    number: int
    work: asyncio.Task[None]
    stop: StopCause | None = None

    def stop_for(self, cause: StopCause) -> bool:
        """Cancel the work once; the first cause wins. False if it already stopped or ended."""
        if self.stop is not None or self.work.done():
            return False
        self.stop = cause
        self.work.cancel(cause.value)
        log.info("task %s: stopping attempt %d (%s)", self.task_id, self.number, cause.value)
        return True


class RunningAttempts:
    def __init__(self) -> None:
        self._by_task: dict[UUID, RunningAttempt] = {}

    @contextmanager
    def register(
        self, task_id: UUID, number: int, work: asyncio.Task[None]
    ) -> Iterator[RunningAttempt]:
        # The run's lease makes this process the task's only runner, so one entry per task.
        running = RunningAttempt(task_id, number, work)
        self._by_task[task_id] = running
        ATTEMPTS_RUNNING.add(1)
        try:
            yield running
        finally:
            ATTEMPTS_RUNNING.add(-1)
            if self._by_task.get(task_id) is running:
                del self._by_task[task_id]

    def cancel(self, task_id: UUID) -> bool:
        """A cancel request for ``task_id``: stop its attempt if it runs here."""
        running = self._by_task.get(task_id)
        return running is not None and running.stop_for(StopCause.CANCEL_REQUESTED)

    def task_ids(self) -> list[UUID]:
        return list(self._by_task)
