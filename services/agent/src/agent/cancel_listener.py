"""Cancel requests reach the process that runs the task: every agent process LISTENs on one
channel (one dedicated connection) and stops the attempt it runs for the notified task id.

A notification sent while this listener was disconnected is made up for on reconnect (it asks
for the requests among the attempts it runs), and each runner also reads the flag whenever it
writes to its run (lease renewals, step commits).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from uuid import UUID

import psycopg
from psycopg import AsyncConnection

from agent.repository import cancel_requested_among
from agent.running import RunningAttempts
from relay_shared.backoff import Backoff
from relay_shared.db import Database
from relay_shared.loops import sleep_until_stopped

log = logging.getLogger(__name__)


class CancelListener:
    """A background loop (run/stop)."""

    def __init__(
        self,
        database: Database,
        channel: str,
        running: RunningAttempts,
        *,
        poll_seconds: float = 1.0,
        backoff: Backoff | None = None,
    ) -> None:
        self._db = database
        self._channel = channel
        self._running = running
        self._poll = poll_seconds
        self._backoff = backoff or Backoff(initial=1.0, maximum=30.0)
        self._stopping = asyncio.Event()
        self.listening = asyncio.Event()  # set while LISTEN is in effect (tests wait for it)
        self._failures = 0  # in a row, for the reconnect backoff

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._listen()
            except (psycopg.Error, OSError) as exc:
                self._failures += 1
                delay = self._backoff.delay(self._failures)
                log.warning("cancel listener: %s; reconnecting in %.1fs", exc, delay)
                await sleep_until_stopped(self._stopping, delay)

    async def _listen(self) -> None:
        async with self._db.listen(self._channel) as conn:
            self.listening.set()
            self._failures = 0
            try:
                await self._catch_up(conn)
                await self._deliver(conn)
            finally:
                self.listening.clear()

    async def _deliver(self, conn: AsyncConnection[Any]) -> None:
        while not self._stopping.is_set():
            async for notify in conn.notifies(timeout=self._poll):
                self._cancel(notify.payload)

    async def _catch_up(self, conn: AsyncConnection[Any]) -> None:
        for task_id in await cancel_requested_among(conn, self._running.task_ids()):
            self._cancel(str(task_id))

    def _cancel(self, payload: str) -> None:
        try:
            task_id = UUID(payload)
        except ValueError:
            log.warning("cancel listener: ignoring payload %r (not a task id)", payload)
            return
        if self._running.cancel(task_id):
            log.info("task %s: cancel request received; stopping its attempt", task_id)
