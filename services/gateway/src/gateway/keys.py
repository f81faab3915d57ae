"""API keys: how they are made, what is stored of them, and who may own one.

A key is ``rly_`` plus 32 random bytes (base64url). Only its sha256 is stored, with a short
prefix that names the key to operators without letting anyone use it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import TTLCache

from gateway.ports import KeyStore

KEY_SCHEME = "rly_"
_KEY_LENGTH = len(KEY_SCHEME) + 43  # token_urlsafe(32): 32 bytes as unpadded base64url
PREFIX_LENGTH = len(KEY_SCHEME) + 8  # "rly_" and 8 of the 43 random characters
TENANT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


class InvalidTenantName(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"invalid tenant name {name!r}: use 1-63 of a-z, 0-9, '_' and '-', "
            "starting with a letter or digit"
        )


def check_tenant_name(name: str) -> str:
    """The tenant id is its name; refuse anything that is not a plain lower-case slug."""
    if TENANT_NAME.fullmatch(name) is None:
        raise InvalidTenantName(name)
    return name


def key_hash(raw_key: str) -> str:
    # A fast hash is right here: keys carry 256 random bits, so no one can guess their way back
    # from a leaked hash, and a slow password hash (bcrypt, argon2) would cost every request
    # milliseconds and rule out looking the key up by its hash through an index.
    return hashlib.sha256(raw_key.encode()).hexdigest()


def key_prefix(raw_key: str) -> str:
    return raw_key[:PREFIX_LENGTH]


@dataclass(frozen=True)
class IssuedKey:
    """A freshly made key: ``raw`` is shown to the operator once and never stored."""

    raw: str
    prefix: str
    hash: str


def issue_key() -> IssuedKey:
    raw = KEY_SCHEME + secrets.token_urlsafe(32)
    return IssuedKey(raw=raw, prefix=key_prefix(raw), hash=key_hash(raw))


class KeyStoreUnavailable(Exception):
    """The key store cannot answer right now (its database is away)."""


# keys remembered per process: far more than any deployment's live keys, and bounded against
# a client sending well-shaped keys that do not exist (the least recently used are dropped)
KEY_CACHE_SIZE = 10_000


class CachedKeyStore:
    """A ``KeyStore`` that remembers each answer (a tenant, or "no such live key") for
    ``seconds``, so a busy key costs a lookup per interval instead of one per request. The
    price is the bound on revocation and expiry: a key stops working within ``seconds`` on
    every gateway. "Cannot answer" is never remembered. Entries are found by the key's hash;
    the key itself is not kept."""

    def __init__(
        self, store: KeyStore, seconds: float, *, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._known: TTLCache[str, str | None] = TTLCache(KEY_CACHE_SIZE, seconds, timer=timer)

    async def tenant_for(self, raw_key: str) -> str | None:
        digest = key_hash(raw_key)
        try:
            return self._known[digest]
        except KeyError:
            tenant = self._known[digest] = await self._store.tenant_for(raw_key)
            return tenant


def looks_like_key(candidate: str) -> bool:
    """Cheap shape check, so junk never reaches the key store."""
    return candidate.startswith(KEY_SCHEME) and len(candidate) == _KEY_LENGTH
