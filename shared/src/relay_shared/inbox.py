"""Inbox: a consumer records each event id in the same transaction as the event's effect.

If the id is already there, the event was handled before and the caller does nothing, so a
redelivered or duplicated event has no second effect.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from relay_shared.events import DomainEvent


async def claim(conn: AsyncConnection[Any], subscriber: str, event: DomainEvent) -> bool:
    """True the first time ``subscriber`` sees this event; False on every repeat."""
    cur = await conn.execute(
        "INSERT INTO inbox (subscriber, event_id, event_type) VALUES (%s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        (subscriber, event.metadata.event_id, event.name),
    )
    return cur.rowcount == 1
