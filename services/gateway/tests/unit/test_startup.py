"""The composition root refuses to build a gateway that could not sign its internal calls."""

from __future__ import annotations

import pytest

from gateway.app import MissingPrivateKey, create_app
from gateway.settings import GatewaySettings
from relay_shared.internal_auth import generate_keypair
from relay_shared.settings import ServiceSettings


def test_without_the_private_key_the_gateway_does_not_start() -> None:
    with pytest.raises(MissingPrivateKey, match="RELAY_INTERNAL_AUTH_PRIVATE_KEY"):
        create_app(GatewaySettings(internal_auth_private_key=None))


def test_a_private_key_that_is_not_one_is_refused_clearly() -> None:
    with pytest.raises(MissingPrivateKey, match="RELAY_INTERNAL_AUTH_PRIVATE_KEY"):
        create_app(GatewaySettings(internal_auth_private_key="not-a-key"))


def test_with_a_private_key_the_app_builds() -> None:
    private, _public = generate_keypair()
    app = create_app(GatewaySettings(internal_auth_private_key=private))
    assert app.title == "Relay gateway"


def test_urls_and_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_TASKS_URL", "http://tasks.internal:8101")
    monkeypatch.setenv("RELAY_MAX_BODY_BYTES", "1234")

    settings = GatewaySettings()

    assert settings.tasks_url == "http://tasks.internal:8101"
    assert settings.max_body_bytes == 1234
    assert (settings.http_port, settings.db_schema) == (8000, "gateway")


def test_idle_upstream_connections_are_dropped_before_the_services_close_them() -> None:
    """A request sent on a connection the service is closing at that instant fails without an
    answer (a spurious 503): the gateway must give idle connections up first."""
    service_closes_after = ServiceSettings.model_fields["http_keep_alive_seconds"].default
    assert GatewaySettings().upstream_keep_alive_seconds < service_closes_after
