from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from relay_devkit.testing import ready_client
from relay_shared.http import create_service_app
from relay_shared.internal_auth import (
    InternalCaller,
    InvalidToken,
    TokenIssuer,
    TokenVerifier,
    generate_keypair,
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
