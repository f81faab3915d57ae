"""Tickets for live connections from browsers, which cannot send an ``Authorization`` header
on a WebSocket or an EventSource.

``POST /v1/ws-tickets`` (with the API key) issues one; ``/v1/ws?ticket=`` or
``/v1/tasks/{id}/events?ticket=`` redeems it. A ticket is ``rlt_`` plus 32 random bytes,
names one tenant, works once and expires after ``RELAY_WS_TICKET_TTL_SECONDS``. Redis keeps
only its sha256, under ``relay:{env}:ws-ticket:{hash}`` with that TTL; GETDEL redeems it, so two
connections racing with one ticket cannot both win.
"""

from __future__ import annotations

import hashlib
import secrets

from redis.asyncio import Redis
from redis.exceptions import RedisError

TICKET_SCHEME = "rlt_"
_TICKET_LENGTH = len(TICKET_SCHEME) + 43  # token_urlsafe(32)


class TicketsUnavailable(Exception):
    """The ticket store cannot answer right now (Redis is away)."""


def issue_ticket() -> str:
    return TICKET_SCHEME + secrets.token_urlsafe(32)


def looks_like_ticket(candidate: str) -> bool:
    """Cheap shape check, so junk never reaches the ticket store."""
    return candidate.startswith(TICKET_SCHEME) and len(candidate) == _TICKET_LENGTH


def ticket_hash(ticket: str) -> str:
    # 256 random bits: a fast hash cannot be walked back, as with API keys (keys.py)
    return hashlib.sha256(ticket.encode()).hexdigest()


class RedisTickets:
    """The ``Tickets`` port on Redis."""

    def __init__(self, redis: Redis, env: str) -> None:
        self._redis = redis
        self._prefix = f"relay:{env}:ws-ticket:"

    async def issue(self, tenant_id: str, *, ttl_seconds: int) -> str:
        ticket = issue_ticket()
        try:
            await self._redis.set(self._prefix + ticket_hash(ticket), tenant_id, ex=ttl_seconds)
        except (RedisError, OSError) as exc:
            raise TicketsUnavailable(str(exc)) from exc
        return ticket

    async def redeem(self, ticket: str) -> str | None:
        try:
            tenant: bytes | str | None = await self._redis.getdel(
                self._prefix + ticket_hash(ticket)
            )
        except (RedisError, OSError) as exc:
            raise TicketsUnavailable(str(exc)) from exc
        return tenant.decode() if isinstance(tenant, bytes) else tenant
