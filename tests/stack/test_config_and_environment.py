"""The stack configuration and the environment each service is started with (no I/O)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from relay_ops.stack.config import CONSOLE_DIST, SERVICES, StackConfig, redact
from relay_ops.stack.environment import Wiring, console_link, service_environment


def test_defaults_are_the_documented_local_ports_and_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [n for n in os.environ if n.startswith("RELAY_STACK_")]:
        monkeypatch.delenv(name)
    for name in ("DATABASE_URL", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    config = StackConfig()
    assert {name: config.port(name) for name in (*SERVICES, "moto")} == {
        "gateway": 8000,
        "tasks": 8101,
        "agent": 8102,
        "notifier": 8103,
        "artifacts": 8104,
        "moto": 5055,
    }
    assert config.env == "local"
    assert config.state_dir == Path.cwd() / ".relay"
    assert config.database_url.get_secret_value() == "postgresql://postgres@127.0.0.1:5432/relay"
    assert config.redis_url.get_secret_value() == "redis://127.0.0.1:6379/0"


def test_everything_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RELAY_STACK_GATEWAY_PORT", "9000")
    monkeypatch.setenv("RELAY_STACK_ENV", "second")
    monkeypatch.setenv("RELAY_STACK_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db:5433/other")
    config = StackConfig()
    assert config.gateway_url == "http://127.0.0.1:9000"
    assert config.env == "second"
    assert config.run_dir == tmp_path / "state" / "run"
    assert config.database_url.get_secret_value() == "postgresql://u@db:5433/other"


def test_a_second_stack_gets_six_distinct_free_ports() -> None:
    config = StackConfig.on_free_ports(env="e2e")
    ports = {config.port(name) for name in (*SERVICES, "moto")}
    assert len(ports) == 6
    assert 8000 not in ports
    assert config.env == "e2e"


def test_passwords_never_reach_messages() -> None:
    assert redact("postgresql://app:s3cret@db:5432/relay") == "postgresql://app:***@db:5432/relay"
    assert redact("redis://:s3cret@cache:6379/0") == "redis://:***@cache:6379/0"
    assert (
        redact("postgresql://postgres@127.0.0.1/relay") == "postgresql://postgres@127.0.0.1/relay"
    )


def _wiring() -> Wiring:
    return Wiring(
        config=StackConfig(
            env="local",
            host="127.0.0.1",
            gateway_port=8000,
            tasks_port=8101,
            agent_port=8102,
            notifier_port=8103,
            artifacts_port=8104,
            moto_port=5055,
            aws_region="us-east-1",
        ),
        database_url="postgresql://postgres@127.0.0.1:5432/relay",
        redis_url="redis://127.0.0.1:6379/0",
        bucket="relay-local-artifacts",
        private_key="PRIVATE",
        webhooks_encryption_keys="FERNET-KEYS",
    )


def test_only_the_gateway_gets_the_signing_key_and_the_upstream_urls() -> None:
    user_env = {"RELAY_INTERNAL_AUTH_PRIVATE_KEY": "from-the-user"}
    gateway = service_environment("gateway", _wiring(), user_env)
    tasks = service_environment("tasks", _wiring(), user_env)
    assert gateway["RELAY_INTERNAL_AUTH_PRIVATE_KEY"] == "PRIVATE"
    assert "RELAY_INTERNAL_AUTH_PRIVATE_KEY" not in tasks
    # the trusted keys come from the JWKS secret, re-read every few seconds (rotation)
    assert "RELAY_INTERNAL_AUTH_PUBLIC_KEY" not in tasks
    assert (
        tasks["RELAY_INTERNAL_AUTH_JWKS_SECRET_ID"]
        == f"relay/{_wiring().config.env}/internal-auth-jwks"
    )
    assert tasks["RELAY_INTERNAL_AUTH_KEY_REFRESH_SECONDS"] == "5"
    assert gateway["RELAY_INTERNAL_AUTH_PRIVATE_KEY_SECRET_ID"].endswith(
        "/internal-auth-private-key"
    )
    assert "RELAY_INTERNAL_AUTH_PRIVATE_KEY_SECRET_ID" not in tasks
    assert gateway["RELAY_TASKS_URL"] == "http://127.0.0.1:8101"
    assert gateway["RELAY_ARTIFACTS_URL"] == "http://127.0.0.1:8104"
    assert gateway["RELAY_NOTIFIER_URL"] == "http://127.0.0.1:8103"
    assert "RELAY_TASKS_URL" not in tasks


def test_the_users_options_pass_through_but_the_stacks_wiring_wins() -> None:
    user_env = {
        "RELAY_LOG_LEVEL": "DEBUG",
        "RELAY_HTTP_PORT": "1",
        "DATABASE_URL": "postgresql://elsewhere/x",
        "RELAY_DATABASE_URL": "postgresql://elsewhere/y",
        "AWS_PROFILE": "production",
        "AWS_ACCESS_KEY_ID": "AKIAREAL",
    }
    env = service_environment("agent", _wiring(), user_env)
    assert env["RELAY_LOG_LEVEL"] == "DEBUG"
    assert env["RELAY_HTTP_PORT"] == "8102"
    assert env["DATABASE_URL"] == env["RELAY_DATABASE_URL"] == _wiring().database_url
    assert env["RELAY_AWS_ENDPOINT_URL"] == "http://127.0.0.1:5055"
    assert env["AWS_ACCESS_KEY_ID"] != "AKIAREAL"
    assert "AWS_PROFILE" not in env
    assert env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["RELAY_ARTIFACTS_BUCKET"] == "relay-local-artifacts"
    assert env["RELAY_ENV"] == "local"


def test_only_the_notifier_gets_the_webhooks_keys_and_the_users_own_win_there() -> None:
    keys = "RELAY_WEBHOOKS_ENCRYPTION_KEYS"
    envs = {name: service_environment(name, _wiring(), {}) for name in SERVICES}
    assert envs["notifier"][keys] == "FERNET-KEYS"
    assert [name for name, env in envs.items() if keys in env] == ["notifier"]

    user_env = {keys: "NEW,OLD"}  # e.g. trying a rotation locally
    assert service_environment("notifier", _wiring(), user_env)[keys] == "NEW,OLD"
    for name in SERVICES:
        if name != "notifier":
            assert keys not in service_environment(name, _wiring(), user_env), name
    # an empty variable counts as unset, as in the services' settings
    assert service_environment("notifier", _wiring(), {keys: ""})[keys] == "FERNET-KEYS"


def test_the_notifier_may_deliver_to_local_receivers_unless_the_user_says_no() -> None:
    allow = "RELAY_WEBHOOKS_ALLOW_PRIVATE"
    assert service_environment("notifier", _wiring(), {})[allow] == "true"
    assert service_environment("notifier", _wiring(), {allow: "false"})[allow] == "false"
    assert allow not in service_environment("gateway", _wiring(), {})


def test_the_webhooks_keys_are_kept_in_the_state_dir(tmp_path: Path) -> None:
    config = StackConfig(state_dir=tmp_path / "state")
    assert config.webhooks_keys_file.is_relative_to(config.state_dir)
    # not under what a start wipes (the throwaway stores' directories) or the run files
    for wiped in ("postgres", "redis"):
        assert not config.webhooks_keys_file.is_relative_to(config.state_dir / wiped)
    assert not config.webhooks_keys_file.is_relative_to(config.run_dir)


def test_the_gateway_serves_the_console_build_and_lets_it_read_from_moto(tmp_path: Path) -> None:
    gateway = service_environment("gateway", _wiring(), {})
    assert gateway["RELAY_CONSOLE_DIR"] == str(CONSOLE_DIST)
    assert CONSOLE_DIST == Path(__file__).resolve().parents[2] / "console" / "dist"
    assert gateway["RELAY_CONSOLE_STORAGE_ORIGIN"] == "http://127.0.0.1:5055"
    for name in SERVICES:
        if name != "gateway":
            assert "RELAY_CONSOLE_DIR" not in service_environment(name, _wiring(), {}), name

    # download links point where RELAY_S3_PUBLIC_ENDPOINT_URL says, when a user sets it
    user_env = {
        "RELAY_S3_PUBLIC_ENDPOINT_URL": "http://s3.localtest.me:9000/",
        "RELAY_CONSOLE_DIR": str(tmp_path),
    }
    gateway = service_environment("gateway", _wiring(), user_env)
    assert gateway["RELAY_CONSOLE_STORAGE_ORIGIN"] == "http://s3.localtest.me:9000"
    assert gateway["RELAY_CONSOLE_DIR"] == str(tmp_path)  # the user's own build wins


def test_the_console_link_says_whether_there_is_a_build(tmp_path: Path) -> None:
    config = _wiring().config
    assert config.console_url == "http://127.0.0.1:8000/console/"
    assert config.console_origins == ("http://127.0.0.1:8000", "http://localhost:8000")

    missing = console_link(config, {"RELAY_CONSOLE_DIR": str(tmp_path)})
    assert missing.startswith("http://127.0.0.1:8000/console/ (not built yet")
    (tmp_path / "index.html").write_text("<!doctype html>")
    assert console_link(config, {"RELAY_CONSOLE_DIR": str(tmp_path)}) == config.console_url
