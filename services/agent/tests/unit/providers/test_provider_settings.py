"""Choosing the provider, its settings, and the credentials each one needs at start-up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.auth.compute_engine import _metadata as gce_metadata

from agent.app import create_app
from agent.providers import (
    PROVIDERS,
    ProviderConfigError,
    UnknownProvider,
    check_provider_settings,
    open_provider,
)
from agent.providers.claude import ClaudeProvider
from agent.providers.credentials import google_credentials, parse_secret, require_aws_credentials
from agent.providers.scripted import ScriptedProvider
from agent.settings import AgentSettings

PROVIDER_ENV = (
    "RELAY_LLM_PROVIDER",
    "ANTHROPIC_API_KEY",
    "RELAY_ANTHROPIC_API_KEY",
    "RELAY_ANTHROPIC_API_KEY_SECRET_ID",
    "ANTHROPIC_BASE_URL",
    "RELAY_MODEL_IDS",
)


@pytest.fixture(autouse=True)
def _no_provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROVIDER_ENV:
        monkeypatch.delenv(name, raising=False)


def test_registry_knows_the_four_providers() -> None:
    assert set(PROVIDERS) == {"anthropic", "bedrock", "vertex", "scripted"}


def test_unset_provider_is_scripted_without_an_anthropic_key() -> None:
    assert AgentSettings().llm_provider == "scripted"


@pytest.mark.parametrize(
    ("variable", "value"),
    [("ANTHROPIC_API_KEY", "sk-ant-local"), ("RELAY_ANTHROPIC_API_KEY_SECRET_ID", "relay/key")],
)
def test_unset_provider_is_anthropic_when_a_key_is_configured(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    assert AgentSettings().llm_provider == "anthropic"


def test_an_explicit_provider_wins_and_is_case_insensitive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-local")
    monkeypatch.setenv("RELAY_LLM_PROVIDER", " Bedrock ")
    assert AgentSettings().llm_provider == "bedrock"


def test_provider_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-very-secret")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9999")
    monkeypatch.setenv("RELAY_MODEL_IDS", '{"claude-sonnet-4-5": "eu.anthropic.sonnet"}')
    monkeypatch.setenv("RELAY_PROVIDER_IDLE_TIMEOUT", "5")
    settings = AgentSettings()
    assert settings.anthropic_base_url == "http://127.0.0.1:9999"
    assert settings.model_ids == {"claude-sonnet-4-5": "eu.anthropic.sonnet"}
    assert (
        settings.provider_connect_timeout,
        settings.provider_idle_timeout,
        settings.provider_call_timeout,
    ) == (10.0, 5.0, 600.0)
    # a secret stays out of reprs (and so out of logs)
    assert "sk-ant-very-secret" not in repr(settings)
    assert "sk-ant-very-secret" not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"llm_provider": "claude-9"}, r"'claude-9'.*anthropic, bedrock, scripted"),
        ({"llm_provider": "anthropic"}, r"ANTHROPIC_API_KEY"),
        ({"llm_provider": "vertex", "vertex_region": "europe-west1"}, r"PROJECT_ID"),
        ({"llm_provider": "vertex", "vertex_project_id": "p"}, r"RELAY_VERTEX_REGION"),
    ],
)
def test_a_missing_setting_stops_the_app_from_being_built(
    overrides: dict[str, str], message: str
) -> None:
    settings = AgentSettings(**overrides)  # type: ignore[arg-type]
    with pytest.raises(ProviderConfigError, match=message):
        check_provider_settings(settings)
    with pytest.raises(ProviderConfigError, match=message):
        create_app(settings)


def test_unknown_provider_is_also_a_value_error() -> None:
    with pytest.raises(UnknownProvider):
        check_provider_settings(AgentSettings(llm_provider="openai"))
    assert issubclass(UnknownProvider, ValueError)


@pytest.mark.parametrize(
    ("secret", "key"),
    [
        ("sk-ant-raw", "sk-ant-raw"),
        ("  sk-ant-raw\n", "sk-ant-raw"),
        ('{"api_key": "sk-ant-json"}', "sk-ant-json"),
        ('{"api_key": "sk-ant-json", "owner": "platform"}', "sk-ant-json"),
        ('{"key": "sk-ant-json"}', None),
        ('{"api_key": 42}', None),
        ('{"api_key": ', None),
        ("", None),
        (None, None),
    ],
)
def test_secret_string_is_the_raw_key_or_json_with_api_key(
    secret: str | None, key: str | None
) -> None:
    assert parse_secret(secret) == key


async def test_anthropic_opens_with_an_env_key_and_no_io() -> None:
    settings = AgentSettings(llm_provider="anthropic", anthropic_api_key="sk-ant-local")
    async with open_provider(settings) as provider:
        assert isinstance(provider, ClaudeProvider)


async def test_scripted_opens_as_it_is() -> None:
    # (a provider for tests is no longer handed to open_provider: tests swap the Ports'
    # provider, see tests/unit/test_app.py)
    async with open_provider(AgentSettings(llm_provider="scripted")) as provider:
        assert isinstance(provider, ScriptedProvider)


@pytest.fixture
def no_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An empty AWS credential chain: no env keys, no files, no container or instance role."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_BEARER_TOKEN_BEDROCK",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.usefixtures("no_aws_credentials")
async def test_bedrock_without_aws_credentials_fails_at_start_up() -> None:
    with pytest.raises(ProviderConfigError, match=r"no AWS credentials.*task role"):
        await require_aws_credentials("eu-west-1")
    with pytest.raises(ProviderConfigError, match="no AWS credentials"):
        async with open_provider(AgentSettings(llm_provider="bedrock")):
            pass


@pytest.mark.usefixtures("no_aws_credentials")
async def test_bedrock_finds_credentials_in_the_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example-secret")
    await require_aws_credentials("eu-west-1")
    async with open_provider(AgentSettings(llm_provider="bedrock")) as provider:
        assert isinstance(provider, ClaudeProvider)


@pytest.mark.usefixtures("no_aws_credentials")
async def test_a_bedrock_profile_is_used_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "[bedrock-dev]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = profile-secret\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    await require_aws_credentials("eu-west-1", profile="bedrock-dev")
    with pytest.raises(ProviderConfigError, match="could not be found"):
        await require_aws_credentials("eu-west-1", profile="no-such-profile")


@pytest.mark.usefixtures("no_aws_credentials")
async def test_a_bedrock_api_key_needs_no_aws_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "bedrock-api-key")
    await require_aws_credentials("eu-west-1")


@pytest.fixture
def no_google_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ADC: no key file, an empty gcloud config, and no probing for a GCE metadata server
    (google-auth reads NO_GCE_CHECK once at import, hence the module attribute)."""
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setattr(gce_metadata, "_NO_GCE_CHECK", True)


@pytest.mark.usefixtures("no_google_credentials")
async def test_vertex_without_google_credentials_fails_at_start_up() -> None:
    with pytest.raises(ProviderConfigError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        await google_credentials()
    settings = AgentSettings(
        llm_provider="vertex", vertex_project_id="p", vertex_region="europe-west1"
    )
    with pytest.raises(ProviderConfigError, match="no Google application default credentials"):
        async with open_provider(settings):
            pass


@pytest.mark.usefixtures("no_google_credentials")
async def test_vertex_uses_application_default_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key_file = tmp_path / "adc.json"
    key_file.write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": "relay-test.apps.googleusercontent.com",
                "client_secret": "not-a-secret",
                "refresh_token": "1//not-a-token",
            }
        )
    )
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    credentials = await google_credentials()
    assert credentials.token is None  # found, not yet refreshed: no network at start-up


@pytest.mark.usefixtures("no_google_credentials")
async def test_vertex_with_an_access_token_skips_adc() -> None:
    settings = AgentSettings(
        llm_provider="vertex",
        vertex_project_id="p",
        vertex_region="europe-west1",
        vertex_access_token="ya29.injected",
    )
    async with open_provider(settings) as provider:
        assert isinstance(provider, ClaudeProvider)
