"""Housekeeping: the outbox and inbox keep only what they still need, and a growing outbox lag
is logged.

Published outbox rows are history once EventBridge has them; inbox rows are needed only while
a repeat of their event can still arrive. Both go in bounded batches (short transactions, no
long locks), from every replica at once if need be (``SKIP LOCKED``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from relay_shared.db import Database
from relay_shared.outbox import OutboxLag, outbox_lag

log = logging.getLogger(__name__)

BATCH_SIZE = 1000
# per sweep and table: a huge backlog is worked off over several sweeps, not in one long burst
MAX_BATCHES = 20

_DELETE_PUBLISHED = """
DELETE FROM outbox WHERE id IN (
    SELECT id FROM outbox
    WHERE published_at IS NOT NULL AND published_at < now() - make_interval(secs => %s)
    LIMIT %s FOR UPDATE SKIP LOCKED)
"""

_DELETE_INBOX = """
DELETE FROM inbox WHERE (subscriber, event_id) IN (
    SELECT subscriber, event_id FROM inbox
    WHERE received_at < now() - make_interval(secs => %s)
    LIMIT %s FOR UPDATE SKIP LOCKED)
"""


@dataclass(frozen=True)
class Swept:
    outbox_deleted: int = 0
    inbox_deleted: int = 0
    lag: OutboxLag | None = None


class Housekeeping:
    """One sweep over this service's kit tables; ``ServiceRuntime.housekeeping`` runs it
    periodically."""

    def __init__(
        self,
        database: Database,
        *,
        outbox_retention: timedelta | None,
        inbox_retention: timedelta | None,
        lag_warn_seconds: float = 60.0,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        """``None`` for a retention: the service has no such table."""
        self._db = database
        self._outbox_retention = outbox_retention
        self._inbox_retention = inbox_retention
        self._lag_warn = lag_warn_seconds
        self._batch_size = batch_size

    async def sweep(self) -> Swept:
        outbox_deleted = inbox_deleted = 0
        lag = None
        if self._outbox_retention is not None:
            outbox_deleted = await self._delete(_DELETE_PUBLISHED, self._outbox_retention)
            async with self._db.transaction() as conn:
                lag = await outbox_lag(conn)
            if lag.oldest_seconds is not None and lag.oldest_seconds > self._lag_warn:
                log.warning(
                    "outbox lag: %d unpublished, the oldest for %.0fs (over %.0fs)",
                    lag.unpublished,
                    lag.oldest_seconds,
                    self._lag_warn,
                )
        if self._inbox_retention is not None:
            inbox_deleted = await self._delete(_DELETE_INBOX, self._inbox_retention)
        if outbox_deleted or inbox_deleted:
            log.info(
                "housekeeping: deleted %d published outbox rows, %d inbox rows",
                outbox_deleted,
                inbox_deleted,
            )
        return Swept(outbox_deleted, inbox_deleted, lag)

    async def _delete(self, statement: str, older_than: timedelta) -> int:
        deleted = 0
        for _ in range(MAX_BATCHES):
            async with self._db.statement() as conn:
                cur = await conn.execute(statement, (older_than.total_seconds(), self._batch_size))
                count = cur.rowcount
            deleted += count
            if count < self._batch_size:
                break
        return deleted
