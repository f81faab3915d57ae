"""Service-to-service authentication that carries the tenant identity.

The gateway is the only public entry. It signs a short-lived token (JWT, EdDSA/Ed25519) for each
internal call, naming the calling service (``iss``), the one service it is for (``aud``) and the
tenant (``sub``). Internal services hold only the public key: they can verify tokens but not
mint them, so a compromised internal service cannot act for a tenant elsewhere, and network
position grants nothing. See docs/adr/0002-internal-auth.md.

Keys rotate without a failed call (docs/operations.md, "Rotating the internal signing key"):
each token names its key (``kid``, the key's RFC 7638 thumbprint), verifiers trust a set of
public keys (``RELAY_INTERNAL_AUTH_PUBLIC_KEY``: one key, several, or a JWKS document, plus the
JWKS in ``RELAY_INTERNAL_AUTH_JWKS_SECRET_ID``, re-read every
``RELAY_INTERNAL_AUTH_KEY_REFRESH_SECONDS``), and the gateway re-reads its signing key from
``RELAY_INTERNAL_AUTH_PRIVATE_KEY_SECRET_ID`` as often. Publish the new public key, wait one
refresh, switch the signing key, wait one token lifetime, drop the old public key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from cachetools import TLRUCache, TTLCache
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from relay_shared.loops import Periodic
from relay_shared.problems import Problem
from relay_shared.settings import ServiceSettings
from relay_shared.tracing import tag_span

log = logging.getLogger(__name__)

ALGORITHM = "EdDSA"
GATEWAY = "gateway"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def generate_keypair() -> tuple[str, str]:
    """A new (private, public) pair as base64url raw Ed25519 keys, one line each."""
    private = Ed25519PrivateKey.generate()
    return (
        _b64(private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())),
        _b64(private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)),
    )


def key_id(public_key: str) -> str:
    """The key's id: its JWK thumbprint (RFC 7638), the same wherever it is computed."""
    canonical = json.dumps(
        {"crv": "Ed25519", "kty": "OKP", "x": public_key}, separators=(",", ":"), sort_keys=True
    )
    return _b64(hashlib.sha256(canonical.encode()).digest())


def public_key_of(private_key: str) -> str:
    """The base64url raw public half of a base64url raw Ed25519 private key."""
    private = Ed25519PrivateKey.from_private_bytes(_unb64(private_key))
    return _b64(private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def jwks(*public_keys: str) -> str:
    """A JWKS document (RFC 7517) of base64url raw Ed25519 public keys, for verifiers to trust."""
    return json.dumps(
        {
            "keys": [
                {"kty": "OKP", "crv": "Ed25519", "x": key, "kid": key_id(key), "use": "sig"}
                for key in public_keys
            ]
        }
    )


class InvalidKeys(ValueError):
    """A public key setting or document that is not one or more Ed25519 keys."""


def parse_public_keys(text: str) -> dict[str, Ed25519PublicKey]:
    """Key id -> key, from a JWKS document or from base64url raw keys separated by spaces or
    commas. Raises InvalidKeys for anything else (an empty text is no keys)."""
    text = text.strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
            raw = [
                entry["x"]
                for entry in document["keys"]
                if entry.get("kty") == "OKP" and entry.get("crv") == "Ed25519"
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidKeys(f"not a JWKS document of Ed25519 keys: {exc}") from None
    else:
        raw = [part for part in re.split(r"[\s,]+", text) if part]
    keys: dict[str, Ed25519PublicKey] = {}
    for key in raw:
        try:
            keys[key_id(key)] = Ed25519PublicKey.from_public_bytes(_unb64(key))
        except (ValueError, TypeError) as exc:
            raise InvalidKeys(f"not a base64url raw Ed25519 public key: {exc}") from None
    return keys


@dataclass(frozen=True)
class Caller:
    """Who is calling an internal route, on behalf of which tenant."""

    service: str
    tenant_id: str


# tokens kept for reuse (issuer) or as verified (verifier): one per tenant and audience in use
TOKEN_CACHE_SIZE = 4096


class TokenIssuer:
    """Signs the gateway's tokens. A token is reused for the first half of its lifetime (per
    audience and tenant): signing costs more than the rest of an internal call's overhead, and
    a reused token is still valid for at least half its lifetime when it arrives."""

    def __init__(self, private_key: str, *, issuer: str = GATEWAY, ttl_seconds: int = 60) -> None:
        self._issuer = issuer
        self._ttl = ttl_seconds
        self._signed: TTLCache[tuple[str, str], str] = TTLCache(
            TOKEN_CACHE_SIZE, ttl_seconds / 2, timer=time.time
        )
        self.use(private_key)

    def use(self, private_key: str) -> bool:
        """Sign with ``private_key`` from now on; True if it is a different key. Raises
        ValueError if it is not a base64url raw Ed25519 private key (the old key stays)."""
        key = Ed25519PrivateKey.from_private_bytes(_unb64(private_key.strip()))
        kid = key_id(public_key_of(private_key.strip()))
        changed = kid != getattr(self, "key_id", None)
        self._key, self.key_id = key, kid
        if changed:
            self._signed.clear()  # from now on, every call carries the new key's tokens
        return changed

    def token(self, *, audience: str, tenant_id: str) -> str:
        token = self._signed.get((audience, tenant_id))
        if token is None:
            token = self._signed[(audience, tenant_id)] = self._sign(audience, tenant_id)
        return token

    def _sign(self, audience: str, tenant_id: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self._issuer,
            "aud": audience,
            "sub": tenant_id,
            "iat": now,
            "exp": now + self._ttl,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.key_id})

    def headers(self, *, audience: str, tenant_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(audience=audience, tenant_id=tenant_id)}"}


class InvalidToken(Exception):
    pass


class TokenVerifier:
    """Verifies internal tokens against a set of trusted public keys: those it is given
    (``public_keys``: one, several, or JWKS; parse_public_keys) and, replaced on every
    ``trust()``, those of a JWKS read later (the refresh below).

    A verified token is remembered until it expires, so the gateway's reused tokens (see
    TokenIssuer) are checked once, not on every call; a change of the trusted keys forgets
    them all, so a key no longer trusted stops working at once."""

    def __init__(
        self,
        public_keys: str,
        *,
        audience: str,
        trusted_issuers: frozenset[str] = frozenset({GATEWAY}),
        leeway_seconds: int = 5,
    ) -> None:
        self._configured = parse_public_keys(public_keys)
        self._keys = dict(self._configured)
        self._audience = audience
        self._issuers = trusted_issuers
        self._leeway = leeway_seconds
        self._verified_tokens: TLRUCache[str, tuple[Caller, float]] = TLRUCache(
            TOKEN_CACHE_SIZE, lambda _token, entry, _now: entry[1], timer=time.time
        )

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def trust(self, keys: Mapping[str, Ed25519PublicKey]) -> None:
        """Trust the configured keys and ``keys`` (which replace those of the last call)."""
        trusted = {**self._configured, **keys}
        if set(trusted) != set(self._keys):
            self._verified_tokens.clear()
        self._keys = trusted

    def verify(self, token: str) -> Caller:
        known = self._verified_tokens.get(token)
        if known is not None:
            return known[0]
        caller, expires_at = self._verify(token)
        self._verified_tokens[token] = (caller, expires_at)
        return caller

    def _verify(self, token: str) -> tuple[Caller, float]:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        if kid is not None:
            key = self._keys.get(kid)
            if key is None:
                raise InvalidToken(f"unknown signing key {kid!r}")
            return self._verified(token, key)
        # a token from a gateway before key ids: any trusted key may have signed it
        error = InvalidToken("no trusted key")
        for key in self._keys.values():
            try:
                return self._verified(token, key)
            except InvalidToken as exc:
                error = exc
        raise error

    def _verified(self, token: str, key: Ed25519PublicKey) -> tuple[Caller, float]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                leeway=self._leeway,
                options={"require": ["iss", "aud", "sub", "exp", "iat"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        if claims["iss"] not in self._issuers:
            raise InvalidToken(f"untrusted issuer {claims['iss']!r}")
        if not isinstance(claims["sub"], str) or not claims["sub"]:
            raise InvalidToken("no tenant")
        return Caller(service=claims["iss"], tenant_id=claims["sub"]), claims["exp"] + self._leeway


def token_verifier(settings: ServiceSettings) -> TokenVerifier:
    """The verifier for this service's internal routes; refuses to start without a key (or a
    JWKS secret to read them from, at start: key_refresh)."""
    configured = settings.internal_auth_public_key
    if configured is None and not settings.internal_auth_jwks_secret_id:
        raise RuntimeError(
            "RELAY_INTERNAL_AUTH_PUBLIC_KEY (or RELAY_INTERNAL_AUTH_JWKS_SECRET_ID) is required "
            "to verify internal calls"
        )
    keys = configured.get_secret_value() if configured is not None else ""
    try:
        return TokenVerifier(keys, audience=settings.service_name)
    except InvalidKeys as exc:
        raise RuntimeError(f"RELAY_INTERNAL_AUTH_PUBLIC_KEY: {exc}") from None


# --- Rotation: keys re-read from Secrets Manager ----------------------------------------------

ReadSecret = Callable[[str], Awaitable[str]]


class KeyRefresh(Periodic):
    """Every ``interval_seconds``, read a secret and hand its text to ``apply`` when it has
    changed. A secret that cannot be read or applied keeps what is in use (a warning)."""

    def __init__(
        self,
        name: str,
        secret_id: str,
        read: ReadSecret,
        apply: Callable[[str], object],
        *,
        interval_seconds: float,
    ) -> None:
        super().__init__(name, self.refresh, interval_seconds=interval_seconds)
        self._secret_id = secret_id
        self._read = read
        self._apply = apply
        self._seen: str | None = None

    async def refresh(self) -> None:
        text = await self._read(self._secret_id)
        if text == self._seen:
            return
        self._apply(text)  # raises on a bad document: the next round tries again
        self._seen = text


def trusted_keys_refresh(
    settings: ServiceSettings, verifier: TokenVerifier, read: ReadSecret
) -> KeyRefresh | None:
    """The loop that keeps ``verifier`` trusting the JWKS in RELAY_INTERNAL_AUTH_JWKS_SECRET_ID
    (None without one)."""
    if not settings.internal_auth_jwks_secret_id:
        return None

    def apply(text: str) -> None:  # only when the secret changed
        keys = parse_public_keys(text)
        verifier.trust(keys)
        log.info("internal auth: trusting keys %s", sorted(verifier.key_ids))

    return KeyRefresh(
        "internal auth keys",
        settings.internal_auth_jwks_secret_id,
        read,
        apply,
        interval_seconds=settings.internal_auth_key_refresh_seconds,
    )


def signing_key_refresh(
    settings: ServiceSettings, issuer: TokenIssuer, read: ReadSecret
) -> KeyRefresh | None:
    """The loop that keeps ``issuer`` signing with the key in
    RELAY_INTERNAL_AUTH_PRIVATE_KEY_SECRET_ID (None without one)."""
    if not settings.internal_auth_private_key_secret_id:
        return None

    def apply(text: str) -> None:
        if issuer.use(text):
            log.info("internal auth: signing with key %s", issuer.key_id)

    return KeyRefresh(
        "internal auth signing key",
        settings.internal_auth_private_key_secret_id,
        read,
        apply,
        interval_seconds=settings.internal_auth_key_refresh_seconds,
    )


def verified_caller(connection: HTTPConnection) -> Caller:
    """The caller named by the connection's internal token (a request or a WebSocket);
    raises InvalidToken."""
    verifier: TokenVerifier = connection.app.state.token_verifier
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise InvalidToken("an internal token is required")
    caller = verifier.verify(token)
    tag_span(tenant_id=caller.tenant_id)
    return caller


async def internal_caller(request: Request) -> Caller:
    """FastAPI dependency for every internal route: the verified caller, or 401. Async, so
    that FastAPI calls it on the event loop instead of handing it to a worker thread."""
    try:
        return verified_caller(request)
    except InvalidToken as exc:
        raise Problem(401, "Unauthenticated", f"Invalid internal token: {exc}") from exc


InternalCaller = Annotated[Caller, Depends(internal_caller)]
