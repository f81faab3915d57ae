"""Checking that a webhook came from Relay (Standard Webhooks signatures)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError as _Unverified

from relay_client.errors import WebhookVerificationError


def verify_webhook(body: bytes | str, headers: Mapping[str, str], secret: str) -> dict[str, Any]:
    """The event a webhook carries, once its ``webhook-signature`` verifies with the endpoint's
    ``secret`` (``whsec_…``) and its ``webhook-timestamp`` is within five minutes. Pass the raw
    body, not re-serialized JSON. Raises WebhookVerificationError otherwise. A delivery may come
    more than once: ``webhook-id`` is the same on every attempt, so keep it to drop repeats."""
    lowered = {name.lower(): value for name, value in headers.items()}
    payload = body.decode() if isinstance(body, bytes) else body
    try:
        event: dict[str, Any] = Webhook(secret).verify(payload, lowered)
    except _Unverified as exc:
        raise WebhookVerificationError(str(exc)) from exc
    return event
