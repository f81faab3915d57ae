from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from fastapi.testclient import TestClient

from relay_devkit.testing import ready_client
from relay_shared.http import create_service_app
from relay_shared.internal_auth import (
    InternalCaller,
    InvalidKeys,
    InvalidToken,
    TokenIssuer,
    TokenVerifier,
    generate_keypair,
    jwks,
    key_id,
    parse_public_keys,
    signing_key_refresh,
    trusted_keys_refresh,
)
from relay_shared.runtime import ServiceRuntime
from relay_shared.settings import ServiceSettings

PRIVATE, PUBLIC = generate_keypair()


def test_a_gateway_token_names_the_tenant_for_its_audience() -> None:
    token = TokenIssuer(PRIVATE).token(audience="tasks", tenant_id="acme")
    caller = TokenVerifier(PUBLIC, audience="tasks").verify(token)
    assert (caller.service, caller.tenant_id) == ("gateway", "acme")


@pytest.mark.parametrize(
    ("case", "make"),
    [
        ("other audience", lambda: TokenIssuer(PRIVATE).token(audience="artifacts", tenant_id="a")),
        (
            "other key",
            lambda: TokenIssuer(generate_keypair()[0]).token(audience="tasks", tenant_id="a"),
        ),
        (
            "untrusted issuer",
            lambda: TokenIssuer(PRIVATE, issuer="agent").token(audience="tasks", tenant_id="a"),
        ),
        (
            "expired",
            lambda: TokenIssuer(PRIVATE, ttl_seconds=-60).token(audience="tasks", tenant_id="a"),
        ),
        ("empty tenant", lambda: TokenIssuer(PRIVATE).token(audience="tasks", tenant_id="")),
        (
            "unsigned",
            lambda: jwt.encode(
                {
                    "iss": "gateway",
                    "aud": "tasks",
                    "sub": "a",
                    "iat": int(time.time()),
                    "exp": int(time.time()) + 60,
                },
                None,
                algorithm="none",
            ),
        ),
        ("tampered", lambda: _tamper(TokenIssuer(PRIVATE).token(audience="tasks", tenant_id="a"))),
        (
            "hmac with the public key as secret",
            lambda: jwt.encode(
                {
                    "iss": "gateway",
                    "aud": "tasks",
                    "sub": "a",
                    "iat": int(time.time()),
                    "exp": int(time.time()) + 60,
                },
                PUBLIC,
                algorithm="HS256",
            ),
        ),
    ],
)
def test_tokens_that_must_not_verify(case: str, make: object) -> None:
    assert callable(make)
    with pytest.raises(InvalidToken):
        TokenVerifier(PUBLIC, audience="tasks").verify(make())


def _tamper(token: str) -> str:
    header, _payload, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["sub"] = "someone-else"
    forged = jwt.encode(claims, "k" * 32, algorithm="HS256").split(".")[1]
    return f"{header}.{forged}.{signature}"


@asynccontextmanager
async def nothing_to_start(app: FastAPI, runtime: ServiceRuntime) -> AsyncIterator[None]:
    yield


def _app() -> FastAPI:
    app = create_service_app(ServiceSettings(service_name="tasks"), start=nothing_to_start)
    app.state.token_verifier = TokenVerifier(PUBLIC, audience="tasks")

    @app.get("/internal/whoami")
    async def whoami(caller: InternalCaller) -> dict[str, str]:
        return {"tenant": caller.tenant_id}

    return app


def test_internal_routes_answer_401_problem_without_a_valid_token() -> None:
    with ready_client(_app()) as client:
        _check_internal_auth(client)


def _check_internal_auth(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer nope"}):
        response = client.get("/internal/whoami", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == 401
    ok = client.get(
        "/internal/whoami",
        headers=TokenIssuer(PRIVATE).headers(audience="tasks", tenant_id="acme"),
    )
    assert ok.json() == {"tenant": "acme"}


# --- key ids, key sets, rotation ----------------------------------------------------------------


def test_tokens_name_their_key_and_a_verifier_trusts_any_key_of_its_set() -> None:
    old_private, old_public = PRIVATE, PUBLIC
    new_private, new_public = generate_keypair()
    issuer = TokenIssuer(old_private)
    assert jwt.get_unverified_header(issuer.token(audience="tasks", tenant_id="a"))["kid"] == (
        key_id(old_public)
    )
    # one key, several, or a JWKS document: the same set
    for keys in (
        f"{old_public} {new_public}",
        f"{old_public},{new_public}",
        jwks(old_public, new_public),
    ):
        verifier = TokenVerifier(keys, audience="tasks")
        assert verifier.key_ids == {key_id(old_public), key_id(new_public)}
        assert verifier.verify(issuer.token(audience="tasks", tenant_id="a")).tenant_id == "a"
    assert issuer.use(new_private) is True
    assert issuer.use(new_private) is False  # the same key again: no change
    assert verifier.verify(issuer.token(audience="tasks", tenant_id="b")).tenant_id == "b"

    only_old = TokenVerifier(old_public, audience="tasks")
    with pytest.raises(InvalidToken, match="unknown signing key"):
        only_old.verify(issuer.token(audience="tasks", tenant_id="b"))


def test_a_token_is_reused_for_half_its_lifetime_and_never_after_a_key_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1_000_000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    issuer = TokenIssuer(PRIVATE, ttl_seconds=60)
    first = issuer.token(audience="tasks", tenant_id="a")
    assert issuer.token(audience="tasks", tenant_id="a") == first
    assert issuer.token(audience="tasks", tenant_id="b") != first  # per tenant
    assert issuer.token(audience="artifacts", tenant_id="a") != first  # per audience
    now[0] += 29
    assert issuer.token(audience="tasks", tenant_id="a") == first
    now[0] += 2  # past half its lifetime: a fresh one, valid for a whole lifetime again
    second = issuer.token(audience="tasks", tenant_id="a")
    assert second != first
    assert jwt.decode(second, options={"verify_signature": False})["exp"] == now[0] + 60
    new_private, new_public = generate_keypair()
    issuer.use(new_private)
    assert jwt.get_unverified_header(issuer.token(audience="tasks", tenant_id="a"))["kid"] == (
        key_id(new_public)
    )


def test_a_verified_token_is_remembered_until_it_expires_or_its_key_is_dropped() -> None:
    _, other_public = generate_keypair()
    verifier = TokenVerifier(f"{PUBLIC} {other_public}", audience="tasks", leeway_seconds=0)
    token = TokenIssuer(PRIVATE, ttl_seconds=1).token(audience="tasks", tenant_id="a")
    assert verifier.verify(token).tenant_id == "a"
    assert verifier.verify(token).tenant_id == "a"  # remembered
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    time.sleep(max(0.0, expires - time.time()) + 0.05)
    with pytest.raises(InvalidToken, match="expired"):
        verifier.verify(token)  # remembered only until then

    token = TokenIssuer(PRIVATE).token(audience="tasks", tenant_id="a")
    verifier = TokenVerifier(other_public, audience="tasks")
    verifier.trust(parse_public_keys(PUBLIC))
    assert verifier.verify(token).tenant_id == "a"
    verifier.trust({})  # the signing key is no longer trusted: its tokens stop at once
    with pytest.raises(InvalidToken, match="unknown signing key"):
        verifier.verify(token)


def test_a_token_without_a_key_id_is_checked_against_every_trusted_key() -> None:
    claims = {"iss": "gateway", "aud": "tasks", "sub": "a", "iat": int(time.time())}
    claims["exp"] = claims["iat"] + 60
    raw = base64.urlsafe_b64decode(PRIVATE + "=" * (-len(PRIVATE) % 4))
    legacy = jwt.encode(claims, Ed25519PrivateKey.from_private_bytes(raw), "EdDSA")
    assert "kid" not in jwt.get_unverified_header(legacy)
    other = generate_keypair()[1]
    assert TokenVerifier(f"{other} {PUBLIC}", audience="tasks").verify(legacy).tenant_id == "a"
    with pytest.raises(InvalidToken):
        TokenVerifier(other, audience="tasks").verify(legacy)


@pytest.mark.parametrize(
    "text",
    ["not-a-key", '{"keys": 3}', "{nope", "A" * 47],  # fixed values: xdist workers must agree
    ids=["not-base64", "keys-not-a-list", "broken-json", "wrong-length"],
)
def test_a_key_set_that_is_not_ed25519_keys_is_refused(text: str) -> None:
    with pytest.raises(InvalidKeys):
        parse_public_keys(text)


async def test_the_trusted_keys_follow_the_jwks_secret_and_survive_a_bad_one() -> None:
    new_private, new_public = generate_keypair()
    secret = {"value": jwks(PUBLIC)}

    async def read(secret_id: str) -> str:
        assert secret_id == "relay/test/jwks"
        return secret["value"]

    settings = ServiceSettings(
        service_name="tasks",
        internal_auth_jwks_secret_id="relay/test/jwks",
        internal_auth_key_refresh_seconds=1,
    )
    verifier = TokenVerifier("", audience="tasks")
    refresh = trusted_keys_refresh(settings, verifier, read)
    assert refresh is not None
    await refresh.refresh()
    assert verifier.key_ids == {key_id(PUBLIC)}

    secret["value"] = jwks(PUBLIC, new_public)  # publish the new key first
    await refresh.refresh()
    assert verifier.verify(TokenIssuer(new_private).token(audience="tasks", tenant_id="a"))

    secret["value"] = "garbage"  # a broken document keeps the keys in use
    with pytest.raises(InvalidKeys):
        await refresh.refresh()
    assert verifier.key_ids == {key_id(PUBLIC), key_id(new_public)}

    secret["value"] = jwks(new_public)  # the old key dropped
    await refresh.refresh()
    assert verifier.key_ids == {key_id(new_public)}


async def test_the_gateway_signs_with_the_key_in_its_secret_after_a_refresh() -> None:
    new_private, new_public = generate_keypair()
    secret = {"value": PRIVATE}

    async def read(secret_id: str) -> str:
        return secret["value"]

    settings = ServiceSettings(
        service_name="gateway", internal_auth_private_key_secret_id="relay/test/signing-key"
    )
    issuer = TokenIssuer(PRIVATE)
    refresh = signing_key_refresh(settings, issuer, read)
    assert refresh is not None
    secret["value"] = new_private + "\n"
    await refresh.refresh()
    assert issuer.key_id == key_id(new_public)
    assert signing_key_refresh(ServiceSettings(service_name="gateway"), issuer, read) is None
