"""Service-to-service authentication that carries the tenant identity.

The gateway is the only public entry. It signs a short-lived token (JWT, EdDSA/Ed25519) for each
internal call, naming the calling service (``iss``), the one service it is for (``aud``) and the
tenant (``sub``). Internal services hold only the public key: they can verify tokens but not
mint them, so a compromised internal service cannot act for a tenant elsewhere, and network
position grants nothing. See docs/adr/0002-internal-auth.md.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from relay_shared.problems import Problem
from relay_shared.settings import ServiceSettings
from relay_shared.tracing import tag_span

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


@dataclass(frozen=True)
class Caller:
    """Who is calling an internal route, on behalf of which tenant."""

    service: str
    tenant_id: str


class TokenIssuer:
    def __init__(self, private_key: str, *, issuer: str = GATEWAY, ttl_seconds: int = 60) -> None:
        self._key = Ed25519PrivateKey.from_private_bytes(_unb64(private_key))
        self._issuer = issuer
        self._ttl = ttl_seconds

    def token(self, *, audience: str, tenant_id: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self._issuer,
            "aud": audience,
            "sub": tenant_id,
            "iat": now,
            "exp": now + self._ttl,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def headers(self, *, audience: str, tenant_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(audience=audience, tenant_id=tenant_id)}"}


class InvalidToken(Exception):
    pass


class TokenVerifier:
    def __init__(
        self,
        public_key: str,
        *,
        audience: str,
        trusted_issuers: frozenset[str] = frozenset({GATEWAY}),
        leeway_seconds: int = 5,
    ) -> None:
        self._key = Ed25519PublicKey.from_public_bytes(_unb64(public_key))
        self._audience = audience
        self._issuers = trusted_issuers
        self._leeway = leeway_seconds

    def verify(self, token: str) -> Caller:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
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
        return Caller(service=claims["iss"], tenant_id=claims["sub"])


def token_verifier(settings: ServiceSettings) -> TokenVerifier:
    """The verifier for this service's internal routes; refuses to start without the key."""
    if settings.internal_auth_public_key is None:
        raise RuntimeError("RELAY_INTERNAL_AUTH_PUBLIC_KEY is required to verify internal calls")
    return TokenVerifier(
        settings.internal_auth_public_key.get_secret_value(), audience=settings.service_name
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


def internal_caller(request: Request) -> Caller:
    """FastAPI dependency for every internal route: the verified caller, or 401."""
    try:
        return verified_caller(request)
    except InvalidToken as exc:
        raise Problem(401, "Unauthenticated", f"Invalid internal token: {exc}") from exc


InternalCaller = Annotated[Caller, Depends(internal_caller)]
