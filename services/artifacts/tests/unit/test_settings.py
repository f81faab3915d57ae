"""Settings from the environment."""

from __future__ import annotations

import pytest

from artifacts.settings import ArtifactsSettings


def test_defaults_follow_the_environment_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_ENV", "dev")
    for name in ("RELAY_ARTIFACTS_BUCKET", "RELAY_S3_PUBLIC_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)

    settings = ArtifactsSettings()

    assert settings.service_name == "artifacts"
    assert settings.http_port == 8104
    assert settings.artifacts_bucket == "relay-dev-artifacts"
    assert settings.queue_name == "relay-dev-artifacts"
    assert settings.db_schema == "artifacts"
    assert settings.download_url_ttl_seconds == 300
    assert settings.s3_public_endpoint_url is None


def test_service_settings_come_from_relay_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_ARTIFACTS_BUCKET", "my-bucket")
    monkeypatch.setenv("RELAY_DOWNLOAD_URL_TTL_SECONDS", "60")
    monkeypatch.setenv("RELAY_S3_PUBLIC_ENDPOINT_URL", "http://localhost:5055")

    settings = ArtifactsSettings()

    assert settings.artifacts_bucket == "my-bucket"
    assert settings.download_url_ttl_seconds == 60
    assert settings.s3_public_endpoint_url == "http://localhost:5055"


def test_download_urls_cannot_outlive_sigv4(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_DOWNLOAD_URL_TTL_SECONDS", str(8 * 24 * 3600))
    with pytest.raises(ValueError, match="download_url_ttl_seconds"):
        ArtifactsSettings()
