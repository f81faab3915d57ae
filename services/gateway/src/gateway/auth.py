"""Who is calling: the tenant named by the request's API key."""

from __future__ import annotations

import logging

from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gateway.keys import KeyStoreUnavailable
from gateway.service import Gateway
from gateway.tickets import TicketsUnavailable
from relay_shared.logs import bind_log_fields
from relay_shared.problems import Problem
from relay_shared.tracing import tag_span

log = logging.getLogger(__name__)

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer rly_...`.")


async def authenticated_tenant(
    gateway: Gateway, credentials: HTTPAuthorizationCredentials | None
) -> str:
    """The tenant whose live API key comes with this request (``bearer``'s credentials), or a
    401 problem; a 503 while the keys cannot be checked."""
    if credentials is None:
        raise Problem(
            401,
            "Unauthenticated",
            "Send your API key as `Authorization: Bearer <key>`.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        tenant = await gateway.tenant_for(credentials.credentials)
    except KeyStoreUnavailable as exc:
        raise _cannot_check("API keys", exc) from exc
    if tenant is None:
        raise Problem(
            401,
            "Unauthenticated",
            "The API key is unknown or revoked.",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return _identified(tenant)


async def live_tenant(
    gateway: Gateway, credentials: HTTPAuthorizationCredentials | None, ticket: str | None
) -> str:
    """For live connections (WebSocket, SSE): the API key's tenant as above, or, without a key,
    the tenant of a ticket from ``POST /v1/ws-tickets``, which this redeems (it works once)."""
    if credentials is not None or ticket is None:
        return await authenticated_tenant(gateway, credentials)
    try:
        tenant = await gateway.tenant_for_ticket(ticket)
    except TicketsUnavailable as exc:
        raise _cannot_check("tickets", exc) from exc
    if tenant is None:
        raise Problem(
            401,
            "Unauthenticated",
            "The ticket is unknown, used or expired; get a new one from POST /v1/ws-tickets.",
        )
    return _identified(tenant)


def _cannot_check(what: str, exc: Exception) -> Problem:
    log.error("cannot check %s: %s", what, exc)
    return Problem(
        503,
        "Service Unavailable",
        f"Cannot check {what} right now; try again shortly.",
        headers={"Retry-After": "2"},
    )


def _identified(tenant: str) -> str:
    tag_span(tenant_id=tenant)
    bind_log_fields(tenant_id=tenant)
    return tenant
