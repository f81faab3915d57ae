"""The hold sweeper: a background loop that releases events held past the hold limit."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from notifier.service import TimelineService

log = logging.getLogger(__name__)


class HoldSweeper:
    def __init__(self, service: TimelineService, *, interval_seconds: float) -> None:
        self._service = service
        self._interval = interval_seconds
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._service.release_overdue()
            except Exception:
                # A database outage must not end the loop (and the process); try next round.
                log.exception("hold sweep failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)
