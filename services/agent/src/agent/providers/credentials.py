"""Credentials each provider needs, resolved once at start-up.

A missing or unreadable credential stops the agent before it takes any work, with a message
that names what to set; no secret ever appears in a message or a log.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import TYPE_CHECKING, Any

import boto3
import google.auth
from botocore.exceptions import BotoCoreError, ClientError
from google.auth import exceptions as google_auth
from google.auth.credentials import Credentials as GoogleCredentials

from relay_shared.aws import aws_client, is_unreachable
from relay_shared.logs import register_secret
from relay_shared.problems import DependencyUnavailable

if TYPE_CHECKING:
    from agent.settings import AgentSettings

GOOGLE_SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
NO_ANTHROPIC_KEY = (
    "RELAY_LLM_PROVIDER=anthropic needs an API key: set RELAY_ANTHROPIC_API_KEY_SECRET_ID"
    " (an AWS Secrets Manager secret) or ANTHROPIC_API_KEY"
)
NO_VERTEX_PLACE = "RELAY_LLM_PROVIDER=vertex needs RELAY_VERTEX_PROJECT_ID and RELAY_VERTEX_REGION"


class ProviderConfigError(RuntimeError):
    """The configured provider cannot start: a setting or a credential is missing."""


class ProviderUnavailable(ProviderConfigError, DependencyUnavailable):
    """Where the credential lives cannot be reached right now (Secrets Manager, the AWS
    credential chain's endpoints): start-up waits and tries again instead of failing."""


async def anthropic_api_key(settings: AgentSettings) -> str:
    """The key from Secrets Manager when a secret id is set, else from ANTHROPIC_API_KEY."""
    if settings.anthropic_api_key_secret_id:
        return await _key_from_secret(settings, settings.anthropic_api_key_secret_id)
    if settings.anthropic_api_key is not None and settings.anthropic_api_key.get_secret_value():
        return settings.anthropic_api_key.get_secret_value()
    raise ProviderConfigError(NO_ANTHROPIC_KEY)


async def _key_from_secret(settings: AgentSettings, secret_id: str) -> str:
    where = f"Secrets Manager secret {secret_id!r} (RELAY_ANTHROPIC_API_KEY_SECRET_ID)"
    try:
        async with aws_client(settings, "secretsmanager") as secrets:
            response = await secrets.get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        if is_unreachable(exc):  # throttled or a server error: not the secret's fault
            raise ProviderUnavailable(f"cannot read {where} yet: {code}") from None
        raise ProviderConfigError(
            f"cannot read the Anthropic API key from {where}: {code}; check the id and that"
            " the agent may call secretsmanager:GetSecretValue on it"
        ) from None
    except BotoCoreError as exc:
        if is_unreachable(exc):
            raise ProviderUnavailable(f"cannot reach {where}: {type(exc).__name__}") from None
        raise ProviderConfigError(
            f"cannot read the Anthropic API key from {where}: {type(exc).__name__}"
        ) from None
    key = parse_secret(response.get("SecretString"))
    if key is None:
        raise ProviderConfigError(
            f'{where} holds no API key: store the key itself, or JSON {{"api_key": ...}}'
        )
    register_secret(key)  # masked in every log line from now on
    return key


def parse_secret(secret: str | None) -> str | None:
    """A SecretString is the raw key, or a JSON object with ``api_key``."""
    text = (secret or "").strip()
    if not text.startswith("{"):
        return text or None
    try:
        document: Any = json.loads(text)
    except ValueError:
        return None
    key = document.get("api_key") if isinstance(document, dict) else None
    if not isinstance(key, str):
        return None
    return key.strip() or None


async def require_aws_credentials(region: str, *, profile: str | None = None) -> None:
    """Bedrock signs with the standard AWS chain (env, profile, ECS task role, instance
    profile), or with ``profile`` alone when one is named, as the SDK does; resolve it now so
    a worker without credentials fails before its first task."""
    if os.environ.get("AWS_BEARER_TOKEN_BEDROCK") and profile is None:
        return  # the SDK sends that Bedrock API key instead of signing

    def resolve() -> bool:
        session = boto3.Session(profile_name=profile, region_name=region)
        credentials = session.get_credentials()
        return credentials is not None and credentials.get_frozen_credentials() is not None

    try:
        found = await asyncio.to_thread(resolve)
    except BotoCoreError as exc:
        if is_unreachable(exc):  # e.g. the container credentials endpoint is not up yet
            raise ProviderUnavailable(
                f"RELAY_LLM_PROVIDER=bedrock: the AWS credential chain is unreachable: {exc}"
            ) from None
        raise ProviderConfigError(
            f"RELAY_LLM_PROVIDER=bedrock: the AWS credential chain failed: {exc}"
        ) from None
    if not found:
        raise ProviderConfigError(
            "RELAY_LLM_PROVIDER=bedrock found no AWS credentials: give the agent a task role or"
            " instance profile, or set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        )


async def google_credentials() -> GoogleCredentials:
    """Google application default credentials, for Vertex."""
    try:
        credentials, _project = await asyncio.to_thread(google.auth.default, scopes=GOOGLE_SCOPES)
    except google_auth.DefaultCredentialsError as exc:
        raise ProviderConfigError(
            "RELAY_LLM_PROVIDER=vertex found no Google application default credentials: set"
            " GOOGLE_APPLICATION_CREDENTIALS to a key file, run `gcloud auth"
            f" application-default login`, or attach a service account ({exc})"
        ) from None
    return credentials
