"""The Anthropic key from AWS Secrets Manager (moto server): read at start-up, and again every
RELAY_ANTHROPIC_API_KEY_REFRESH_SECONDS, so a rotated key is used without a restart."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import boto3
import pytest
from asgi_lifespan import LifespanManager

from agent.app import create_app
from agent.providers import ProviderConfigError, open_provider
from agent.settings import AgentSettings
from relay_devkit.fakes import FakeAnthropicApi, Reply
from relay_devkit.testing import eventually, wait_ready

from .conftest import SDK_DEPRECATION_IS_NOT_OURS, Served, model_request

pytestmark = [pytest.mark.integration, SDK_DEPRECATION_IS_NOT_OURS]


def _secret(moto_endpoint: str, value: str) -> str:
    secrets = boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name="us-east-1")
    name = f"relay/anthropic-{uuid.uuid4().hex[:8]}"
    secrets.create_secret(Name=name, SecretString=value)
    return name


def _settings(moto_endpoint: str, **overrides: Any) -> AgentSettings:
    values: dict[str, Any] = {
        "llm_provider": "anthropic",
        "aws_endpoint_url": moto_endpoint,
        "aws_region": "us-east-1",
        **overrides,
    }
    return AgentSettings(**values)


@pytest.mark.parametrize(
    "secret_string", ["sk-ant-from-secrets", json.dumps({"api_key": "sk-ant-from-secrets"})]
)
async def test_the_key_is_read_from_secrets_manager(
    moto_endpoint: str, anthropic_api: Served[FakeAnthropicApi], secret_string: str
) -> None:
    settings = _settings(
        moto_endpoint,
        anthropic_api_key_secret_id=_secret(moto_endpoint, secret_string),
        anthropic_base_url=anthropic_api.url,
    )
    anthropic_api.fake.script(Reply())
    async with open_provider(settings) as provider:
        await provider.complete(model_request())
    assert anthropic_api.fake.calls[0].credential == "sk-ant-from-secrets"


async def test_a_rotated_key_is_used_after_the_next_refresh_and_a_bad_read_keeps_the_old(
    moto_endpoint: str, anthropic_api: Served[FakeAnthropicApi], caplog: pytest.LogCaptureFixture
) -> None:
    secret_id = _secret(moto_endpoint, "sk-ant-first")
    settings = _settings(
        moto_endpoint,
        anthropic_api_key_secret_id=secret_id,
        anthropic_api_key_refresh_seconds=0.1,
        anthropic_base_url=anthropic_api.url,
    )
    secrets = boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name="us-east-1")
    anthropic_api.fake.script(*[Reply() for _ in range(3)])

    async def logged(text: str) -> None:  # a refresh round that got this far

        async def seen() -> bool:
            return any(text in record.getMessage() for record in caplog.records)

        await eventually(seen, within=20)

    caplog.set_level(logging.INFO, logger="agent.providers.clients")
    async with open_provider(settings) as provider:
        await provider.complete(model_request())
        secrets.put_secret_value(SecretId=secret_id, SecretString=json.dumps({"nope": 1}))
        await logged("keeping the API key in use")  # unreadable: the key in use stays
        await provider.complete(model_request())
        secrets.put_secret_value(SecretId=secret_id, SecretString="sk-ant-second")
        await logged("using the rotated API key")
        await provider.complete(model_request())
    credentials = [call.credential for call in anthropic_api.fake.calls]
    assert credentials == ["sk-ant-first", "sk-ant-first", "sk-ant-second"]


async def test_the_secret_wins_over_an_env_key(
    moto_endpoint: str, anthropic_api: Served[FakeAnthropicApi]
) -> None:
    settings = _settings(
        moto_endpoint,
        anthropic_api_key="sk-ant-local",
        anthropic_api_key_secret_id=_secret(moto_endpoint, "sk-ant-from-secrets"),
        anthropic_base_url=anthropic_api.url,
    )
    anthropic_api.fake.script(Reply())
    async with open_provider(settings) as provider:
        await provider.complete(model_request())
    assert anthropic_api.fake.calls[0].credential == "sk-ant-from-secrets"


async def test_a_missing_secret_fails_start_up_naming_it(moto_endpoint: str) -> None:
    settings = _settings(moto_endpoint, anthropic_api_key_secret_id="relay/no-such-secret")
    with pytest.raises(ProviderConfigError) as caught:
        async with open_provider(settings):
            pass
    message = str(caught.value)
    assert "'relay/no-such-secret'" in message
    assert "ResourceNotFoundException" in message
    assert "RELAY_ANTHROPIC_API_KEY_SECRET_ID" in message


async def test_a_secret_without_a_key_fails_start_up(moto_endpoint: str) -> None:
    settings = _settings(
        moto_endpoint,
        anthropic_api_key_secret_id=_secret(moto_endpoint, json.dumps({"token": "x"})),
    )
    with pytest.raises(ProviderConfigError, match="holds no API key"):
        async with open_provider(settings):
            pass


async def test_the_agent_app_does_not_start_without_its_key(agent_settings: AgentSettings) -> None:
    settings = agent_settings.model_copy(
        update={"llm_provider": "anthropic", "anthropic_api_key_secret_id": "relay/no-such-secret"}
    )
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=60):
        with pytest.raises(ProviderConfigError, match="no-such-secret"):
            await wait_ready(app)
        assert app.state.runtime.phase == "failed"
