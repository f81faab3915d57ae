"""The Lambda entry point on the fakes: the app is built and started once per execution
environment, requests arrive as API Gateway HTTP API events, secrets come by reference.
(tests/e2e/test_gateway_lambda.py runs it against the whole stack and moto's Secrets Manager.)

Sync tests: the entry point runs its own event loop, as in a Lambda execution environment."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from gateway.app import create_app
from gateway.lambda_http import LambdaGateway, load_secrets, secrets_from_manager
from gateway.settings import GatewaySettings
from relay_devkit.apigateway import LambdaHttpClient
from relay_shared.composition import given
from relay_shared.internal_auth import generate_keypair

from .fakes import ACME_KEY, Fakes, json_reply, task_document

TASK = str(uuid.uuid4())
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:relay/dev/rds-AbCdEf"


class SecretsManagerStandIn:
    """Answers get_secret_value from a dict (the e2e test uses moto's Secrets Manager)."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = secrets
        self.asked: list[str] = []

    def get_secret_value(self, SecretId: str) -> dict[str, Any]:
        self.asked.append(SecretId)
        return {"SecretString": self.secrets[SecretId]}


@pytest.fixture
def built() -> list[FastAPI]:
    return []


@pytest.fixture
def handler(fakes: Fakes, built: list[FastAPI]) -> Iterator[LambdaGateway]:
    def make_app() -> FastAPI:
        settings = GatewaySettings(internal_auth_private_key=generate_keypair()[0])
        app = create_app(settings, ports=given(fakes.ports()))
        built.append(app)
        return app

    gateway = LambdaGateway(make_app, ready_timeout=10)
    yield gateway
    gateway.close()
    asyncio.set_event_loop(None)


def test_the_app_starts_once_and_serves_every_later_invocation(
    handler: LambdaGateway, fakes: Fakes, built: list[FastAPI]
) -> None:
    fakes.services.answer(
        "tasks", "GET", f"/internal/tasks/{TASK}", json_reply(200, task_document(TASK))
    )
    client = LambdaHttpClient(handler, ACME_KEY)
    for _ in range(3):
        answer = client.request("GET", f"/v1/tasks/{TASK}")
        assert answer.status == 200
        assert answer.json()["id"] == TASK
    assert len(built) == 1
    assert built[0].state.runtime.phase == "ready"
    assert handler.cold_start_seconds is not None


def test_a_request_body_reaches_the_app_and_refusals_are_problems(
    handler: LambdaGateway, fakes: Fakes
) -> None:
    fakes.services.answer("tasks", "POST", "/internal/tasks", json_reply(202, task_document(TASK)))
    client = LambdaHttpClient(handler, ACME_KEY)
    created = client.request("POST", "/v1/tasks", json_body={"prompt": "Write a haiku."})
    assert created.status == 202
    [call] = [c for c in fakes.services.calls if c.method == "POST"]
    assert json.loads(call.body or b"{}")["prompt"] == "Write a haiku."

    refused = LambdaHttpClient(handler).request("GET", f"/v1/tasks/{TASK}")
    assert refused.status == 401
    assert refused.headers["content-type"] == "application/problem+json"


def test_event_streams_are_refused_before_reaching_the_app(
    handler: LambdaGateway, fakes: Fakes
) -> None:
    answer = LambdaHttpClient(handler, ACME_KEY).request("GET", f"/v1/tasks/{TASK}/events")
    assert answer.status == 501
    assert answer.json()["instance"] == f"/v1/tasks/{TASK}/events"
    assert fakes.services.calls == []


@pytest.mark.parametrize("path", ["/readyz", "/healthz", "/%72eadyz"])
def test_the_probes_are_not_served_through_api_gateway(handler: LambdaGateway, path: str) -> None:
    answer = LambdaHttpClient(handler).request("GET", path)
    assert answer.status == 404
    assert answer.headers["content-type"] == "application/problem+json"


def test_secret_references_are_read_as_ecs_writes_them() -> None:
    manager = SecretsManagerStandIn(
        {
            SECRET_ARN: json.dumps({"username": "relay", "password": "s3cret"}),
            "relay/dev/internal-auth-private-key": "private-key",
        }
    )
    values = secrets_from_manager(
        {
            "PGPASSWORD": f"{SECRET_ARN}:password::",
            "RELAY_INTERNAL_AUTH_PRIVATE_KEY": "relay/dev/internal-auth-private-key",
        },
        client=manager,
    )
    assert values == {"PGPASSWORD": "s3cret", "RELAY_INTERNAL_AUTH_PRIVATE_KEY": "private-key"}
    assert manager.asked == [SECRET_ARN, "relay/dev/internal-auth-private-key"]


def test_without_references_nothing_is_read_and_a_bad_setting_is_refused() -> None:
    environ: dict[str, str] = {}
    assert load_secrets(environ) == []
    with pytest.raises(ValueError, match="JSON object"):
        load_secrets({"RELAY_LAMBDA_SECRETS": '["PGPASSWORD"]'})
