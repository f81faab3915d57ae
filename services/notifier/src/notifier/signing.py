"""Webhook secrets: made here (``whsec_``), kept encrypted at rest (``SecretBox``), and used to
sign deliveries per Standard Webhooks with the ``standardwebhooks`` library."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import datetime
from math import floor

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 32


class SecretsUnreadable(Exception):
    """A stored secret was encrypted with a key no longer in RELAY_WEBHOOKS_ENCRYPTION_KEYS."""


def new_secret() -> str:
    """A fresh signing secret, as the receiver configures it: ``whsec_`` + base64 of 32 bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


class SecretBox:
    """Encrypts secrets for the database with the first key, decrypts with any (key rotation:
    the new key goes first, the old one stays after it until nothing needs it)."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is needed")
        self._fernet = MultiFernet([Fernet(key.strip().encode()) for key in keys])

    @classmethod
    def from_setting(cls, value: str) -> SecretBox:
        """From ``RELAY_WEBHOOKS_ENCRYPTION_KEYS`` (comma-separated, newest first)."""
        return cls([key for key in value.split(",") if key.strip()])

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as exc:
            raise SecretsUnreadable(
                "a webhook secret was encrypted with a key that is no longer configured"
            ) from exc


def signature_headers(
    message_id: str, timestamp: datetime, body: str, secrets_in_use: Sequence[str]
) -> dict[str, str]:
    """The Standard Webhooks headers: one ``v1,…`` signature per live secret, space-separated."""
    signatures = " ".join(
        Webhook(secret).sign(message_id, timestamp, body) for secret in secrets_in_use
    )
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(floor(timestamp.timestamp())),
        "webhook-signature": signatures,
    }
