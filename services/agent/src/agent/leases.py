"""Holding a run's lease while its attempt runs.

The lease is what keeps two workers from running one task: a delivery of a task whose lease is
live is deferred, and a run is taken over only once its lease has expired. The keeper renews it
every third of its length; if it cannot (another attempt took the run over, or the database has
been unreachable until the lease is as good as gone), the attempt stops and emits nothing more.
Each renewal also reads the run's cancel flag: that is the run's first check after it
registers, and the fallback for a cancel notification that never arrived.
"""

from __future__ import annotations

import asyncio
import logging
import time

from agent.ports import Clock, RunStore, Sleep
from agent.running import RunningAttempt, StopCause

log = logging.getLogger(__name__)


async def keep_lease(
    runs: RunStore,
    running: RunningAttempt,
    *,
    owner: str,
    lease_seconds: float,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
) -> None:
    """Renew now and every ``lease_seconds / 3`` until cancelled or the attempt must stop."""
    interval = lease_seconds / 3
    valid_until = clock() + lease_seconds
    while True:
        asked_at = clock()
        try:
            async with runs.transaction() as tx:
                flags = await tx.renew_lease(running.task_id, running.number, owner, lease_seconds)
        except Exception as exc:
            if asked_at + interval >= valid_until:
                log.error("task %s: lease not renewed in time (%s); stopping", running.task_id, exc)
                running.stop_for(StopCause.LEASE_LOST)
                return
            log.warning("task %s: lease renewal failed (%s); retrying", running.task_id, exc)
        else:
            if flags is None:
                log.warning("task %s: attempt %d lost its lease", running.task_id, running.number)
                running.stop_for(StopCause.LEASE_LOST)
                return
            valid_until = asked_at + lease_seconds
            if flags.cancel_requested:
                running.stop_for(StopCause.CANCEL_REQUESTED)
                return
        await sleep(interval)
