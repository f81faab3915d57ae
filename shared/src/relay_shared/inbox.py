"""Inbox: a consumer records each event id in the same transaction as the event's effect.

If the id is already there, the event was handled before and the caller does nothing, so a
redelivered or duplicated event has no second effect.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from relay_shared.events import DomainEvent

# The claim as SQL, for a service that claims in the same statement as other work (as
# relay_shared.outbox's OUTBOX_INSERT): named parameters from ``claim_row``.
CLAIM_INSERT = (
    "INSERT INTO inbox (subscriber, event_id, event_type)"
    " VALUES (%(subscriber)s, %(event_id)s, %(event_type)s) ON CONFLICT DO NOTHING"
)


def claim_row(subscriber: str, event: DomainEvent) -> dict[str, Any]:
    return {
        "subscriber": subscriber,
        "event_id": event.metadata.event_id,
        "event_type": event.name,
    }


async def claim(conn: AsyncConnection[Any], subscriber: str, event: DomainEvent) -> bool:
    """True the first time ``subscriber`` sees this event; False on every repeat."""
    cur = await conn.execute(CLAIM_INSERT, claim_row(subscriber, event))
    return cur.rowcount == 1
