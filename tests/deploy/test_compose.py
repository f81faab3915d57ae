"""docker-compose.yml, checked without Docker: it is a valid Compose file, every service is built
from files that exist, every Relay service gets what its own Settings class and composition root
require (derived from the code, not listed here), every address it is given reaches a service of
the stack, and .env.example documents every variable the file uses."""

from __future__ import annotations

import importlib
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from cryptography.fernet import Fernet
from pydantic import SecretStr
from pydantic_settings import BaseSettings

from relay_ops.stack.config import StackConfig
from relay_ops.stack.topology import artifacts_bucket_name
from relay_shared.internal_auth import generate_keypair
from relay_shared.settings import ServiceSettings

from .compose import (
    COMPOSE_FILE,
    ENV_EXAMPLE,
    MissingVariable,
    container_environment,
    documented_variables,
    image_dockerfile,
    interpolate,
    load_compose,
    read_env_file,
    referenced_variables,
)
from .dockerfiles import ROOT, SERVICES, TOOLS_DOCKERFILE, parse

SECRETS = (
    "POSTGRES_PASSWORD",
    "RELAY_INTERNAL_AUTH_PRIVATE_KEY",
    "RELAY_INTERNAL_AUTH_PUBLIC_KEY",
    "RELAY_WEBHOOKS_ENCRYPTION_KEYS",
)
# Ports the third-party images listen on (their documented defaults).
IMAGE_PORTS = {"postgres": [5432], "redis": [6379], "otel-collector": [4317, 4318]}
DEFAULT_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "postgres": 5432, "redis": 6379}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


# --- reading the stack -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def dotenv() -> dict[str, str]:
    """.env as a user makes it: .env.example with the secrets it asks for filled in."""
    private, public = generate_keypair()
    values = read_env_file(ENV_EXAMPLE)
    values.update(
        POSTGRES_PASSWORD="0123456789abcdef",
        RELAY_INTERNAL_AUTH_PRIVATE_KEY=private,
        RELAY_INTERNAL_AUTH_PUBLIC_KEY=public,
        RELAY_WEBHOOKS_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
    )
    return values


@pytest.fixture(scope="module")
def stack(compose: dict[str, Any], dotenv: dict[str, str]) -> dict[str, Any]:
    """The compose file as `docker compose` sees it with that .env."""
    interpolated: dict[str, Any] = interpolate(compose, dotenv)
    return interpolated


def _settings_class(service: str) -> type[ServiceSettings]:
    module = importlib.import_module(f"{service}.settings")
    classes = [
        c
        for _, c in inspect.getmembers(module, inspect.isclass)
        if issubclass(c, ServiceSettings) and c.__module__ == module.__name__
    ]
    assert len(classes) == 1, f"{service}.settings: expected one ServiceSettings subclass"
    return classes[0]


@pytest.fixture
def isolated_environ(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No variable of the machine running the tests leaks into a service's settings."""
    for name in list(os.environ):
        if name.startswith(("RELAY_", "AWS_", "ANTHROPIC_", "PG")) or name in {
            "DATABASE_URL",
            "REDIS_URL",
        }:
            monkeypatch.delenv(name)
    return monkeypatch


def _build(service: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The service's settings and app from exactly ``env``, through its composition root
    (create_app checks the settings and returns at once; nothing touches the network)."""
    with monkeypatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        settings = _settings_class(service)()
        app = importlib.import_module(f"{service}.app").create_app(settings)
    return settings, app


def _starts(service: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> bool:
    try:
        _build(service, env, monkeypatch)
    except Exception:
        return False
    return True


def _urls_in(settings: BaseSettings) -> dict[str, str]:
    """Every setting whose value is an address with a host."""
    found: dict[str, str] = {}
    for name, value in settings:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(text, str) and "://" in text and urlsplit(text).hostname:
            found[name] = text
    return found


def _container_ports(name: str, service: dict[str, Any], env: dict[str, str]) -> list[int]:
    if name in IMAGE_PORTS:
        return IMAGE_PORTS[name]
    command = service.get("command") or []
    if "--port" in command:  # moto (relay_ops.stack.moto_door)
        return [int(command[command.index("--port") + 1])]
    return [int(env["RELAY_HTTP_PORT"])]


def _published(stack: dict[str, Any]) -> dict[int, str]:
    """Host port on 127.0.0.1 -> the service published there."""
    published: dict[int, str] = {}
    for name, service in stack["services"].items():
        for mapping in service.get("ports", []):
            host_ip, host_port, _ = str(mapping).split(":")
            assert host_ip == "127.0.0.1", f"{name} publishes {mapping} beyond this machine"
            published[int(host_port)] = name
    return published


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration))


# --- the file ----------------------------------------------------------------------------------


def _check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_compose_file_follows_the_compose_specification() -> None:
    result = _check_jsonschema(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_specification_check_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("service_healthy", "service_ready", 1))
    assert _check_jsonschema(broken).returncode != 0


def test_every_image_is_built_from_files_that_exist(compose: dict[str, Any]) -> None:
    built = {n: s["build"] for n, s in compose["services"].items() if "build" in s}
    assert set(SERVICES) <= set(built)
    for name, build in built.items():
        context = ROOT / build["context"]
        assert context.is_dir(), f"{name}: no build context {context}"
        assert (context / build["dockerfile"]).is_file(), f"{name}: no {build['dockerfile']}"
    for name in SERVICES:
        assert built[name]["dockerfile"] == f"services/{name}/Dockerfile"


def test_env_example_documents_every_variable_the_compose_file_uses() -> None:
    used = referenced_variables(COMPOSE_FILE.read_text())
    documented = documented_variables(ENV_EXAMPLE)
    assert used - documented.keys() == set(), "used in docker-compose.yml, not in .env.example"
    assert documented.keys() - used == set(), "in .env.example, not used by docker-compose.yml"
    undocumented = [name for name in used if len(documented[name]) < 20]
    assert not undocumented, f"no explanation above these in .env.example: {undocumented}"


def test_secrets_have_no_default_and_stop_compose_when_missing(
    compose: dict[str, Any], dotenv: dict[str, str]
) -> None:
    example = read_env_file(ENV_EXAMPLE)
    for name in (*SECRETS, "ANTHROPIC_API_KEY"):
        assert example[name] == "", f"{name} has a value in .env.example"
    interpolate(compose, dotenv)  # all of them given: fine
    for name in SECRETS:
        for missing in ({**dotenv, name: ""}, {k: v for k, v in dotenv.items() if k != name}):
            with pytest.raises(MissingVariable, match=name):
                interpolate(compose, missing)


# --- every Relay service, as its container sees it ---------------------------------------------


@pytest.fixture(params=SERVICES)
def service(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def test_each_service_starts_from_the_environment_compose_gives_it(
    service: str, stack: dict[str, Any], isolated_environ: pytest.MonkeyPatch
) -> None:
    env = container_environment(stack["services"][service], {})
    settings, _app = _build(service, env, isolated_environ)
    # reachable from the other containers, on the port the health check asks
    assert settings.http_host == "0.0.0.0"
    probe = str(stack["services"][service]["healthcheck"]["test"])
    assert f"127.0.0.1:{settings.http_port}/readyz" in probe


def test_each_service_gets_every_setting_it_requires(
    service: str,
    compose: dict[str, Any],
    dotenv: dict[str, str],
    stack: dict[str, Any],
    isolated_environ: pytest.MonkeyPatch,
) -> None:
    """Required = a variable without which the service's composition root refuses to start,
    found by taking each one away from everything the stack could give it."""
    offered = dict(dotenv)
    for other in SERVICES:
        offered.update(container_environment(stack["services"][other], {}))
    offered.update(container_environment(stack["services"][service], {}))
    assert _starts(service, offered, isolated_environ)
    required = {
        name
        for name in offered
        if not _starts(service, {k: v for k, v in offered.items() if k != name}, isolated_environ)
    }
    given = container_environment(stack["services"][service], {})
    missing = sorted(name for name in required if not given.get(name))
    assert not missing, f"{service} requires {missing}; docker-compose.yml does not give them"
    # least privilege: the signing key goes only where it is required
    if "RELAY_INTERNAL_AUTH_PRIVATE_KEY" not in required:
        assert "RELAY_INTERNAL_AUTH_PRIVATE_KEY" not in given


def test_every_address_a_service_is_given_reaches_the_stack(
    service: str, stack: dict[str, Any], isolated_environ: pytest.MonkeyPatch
) -> None:
    """A loopback default (127.0.0.1:8101, the local PostgreSQL) would point a container at
    itself: every address must name a compose service on a port it listens on, or a port the
    stack publishes on the host (the links clients open)."""
    services = stack["services"]
    env = container_environment(services[service], {})
    settings, _ = _build(service, env, isolated_environ)
    published = _published(stack)
    for name, url in _urls_in(settings).items():
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORTS[parts.scheme]
        if parts.hostname in LOOPBACK:
            assert port in published, f"{service}.{name} = {url}: the container itself"
            continue
        assert parts.hostname in services, f"{service}.{name} = {url}: no such service"
        target = services[parts.hostname]
        target_env = container_environment(target, {}) if target.get("build") else {}
        listening = _container_ports(parts.hostname, target, target_env)
        assert port in listening, f"{service}.{name} = {url}: {parts.hostname} listens {listening}"


def test_each_service_waits_for_what_it_talks_to(
    service: str, stack: dict[str, Any], isolated_environ: pytest.MonkeyPatch
) -> None:
    services = stack["services"]
    settings, _ = _build(service, container_environment(services[service], {}), isolated_environ)
    depends = services[service]["depends_on"]
    for name, url in _urls_in(settings).items():
        host = urlsplit(url).hostname
        if host in LOOPBACK or host == service:
            continue
        if host == "otel-collector":
            # telemetry is best effort: the exporters retry, and a service never waits for it
            assert depends.get(host, {}).get("condition") == "service_started", (service, name)
        elif host == "moto":
            # its queues and bucket exist once the one-shot bootstrap has run
            assert depends.get("init", {}).get("condition") == "service_completed_successfully"
        else:
            assert depends.get(host, {}).get("condition") == "service_healthy", (service, name)


def test_each_service_is_stopped_only_after_its_own_grace(
    service: str, stack: dict[str, Any], isolated_environ: pytest.MonkeyPatch
) -> None:
    spec = stack["services"][service]
    settings, _ = _build(service, container_environment(spec, {}), isolated_environ)
    # SIGKILL before the drain ends would cut in-flight work short
    assert _seconds(spec["stop_grace_period"]) > settings.shutdown_grace_seconds


def test_each_service_runs_read_only_and_unprivileged(service: str, stack: dict[str, Any]) -> None:
    spec = stack["services"][service]
    assert spec["read_only"] is True
    assert spec["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in spec["security_opt"]
    assert "user" not in spec, "the image's non-root user must not be overridden"
    assert any(str(t).split(":")[0] == "/tmp" for t in spec["tmpfs"])


def test_the_agent_workspace_is_writable_storage(
    stack: dict[str, Any], isolated_environ: pytest.MonkeyPatch
) -> None:
    spec = stack["services"]["agent"]
    settings, _ = _build("agent", container_environment(spec, {}), isolated_environ)
    mounts = [str(t).split(":")[0] for t in spec.get("tmpfs", [])]
    mounts += [str(v).split(":")[1] for v in spec.get("volumes", [])]
    assert str(settings.workspace_root) in mounts


def test_without_an_anthropic_key_the_agent_runs_the_scripted_model(
    compose: dict[str, Any], dotenv: dict[str, str], isolated_environ: pytest.MonkeyPatch
) -> None:
    # .env.example leaves the key empty, and compose passes it on empty: that means unset
    spec = interpolate(compose, dotenv)["services"]["agent"]
    settings, _ = _build("agent", container_environment(spec, {}), isolated_environ)
    assert settings.llm_provider == "scripted"
    with_key = interpolate(compose, {**dotenv, "ANTHROPIC_API_KEY": "sk-ant-test"})
    settings, _ = _build(
        "agent", container_environment(with_key["services"]["agent"], {}), isolated_environ
    )
    assert settings.llm_provider == "anthropic"


def test_every_service_and_the_bootstrap_agree_on_names(
    stack: dict[str, Any], isolated_environ: pytest.MonkeyPatch
) -> None:
    services = stack["services"]
    init = services["init"]
    command = init["command"]
    assert command[:2] == ["relay", "bootstrap"]
    env = command[command.index("--env") + 1]
    init_env = init["environment"]
    for name in SERVICES:
        settings, _ = _build(name, container_environment(services[name], {}), isolated_environ)
        assert settings.env == env, name
        assert settings.aws_endpoint_url == init_env["RELAY_AWS_ENDPOINT_URL"], name
        assert settings.aws_region == init_env["RELAY_STACK_AWS_REGION"], name
        if hasattr(settings, "artifacts_bucket"):
            assert settings.artifacts_bucket == artifacts_bucket_name(env), name


def test_only_the_notifier_gets_the_webhook_keys_and_it_may_deliver_locally(
    stack: dict[str, Any], dotenv: dict[str, str], isolated_environ: pytest.MonkeyPatch
) -> None:
    services = stack["services"]
    given = {name: container_environment(services[name], {}) for name in SERVICES}
    assert [n for n, env in given.items() if "RELAY_WEBHOOKS_ENCRYPTION_KEYS" in env] == [
        "notifier"
    ]
    settings, _ = _build("notifier", given["notifier"], isolated_environ)
    assert settings.webhooks_encryption_keys is not None
    keys = settings.webhooks_encryption_keys.get_secret_value()
    assert keys == dotenv["RELAY_WEBHOOKS_ENCRYPTION_KEYS"]
    assert settings.webhooks_allow_private is True


# --- the rest of the stack ---------------------------------------------------------------------


def test_every_long_running_service_has_a_health_check(compose: dict[str, Any]) -> None:
    for name, spec in compose["services"].items():
        if name == "init":  # one-shot
            continue
        if name == "otel-collector":  # a scratch image: nothing inside can run a probe
            continue
        assert spec.get("healthcheck", {}).get("test"), f"{name} has no health check"


def test_every_dependency_names_the_condition_that_fits_it(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, spec in services.items():
        depends = spec.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on without conditions"
        for dependency, how in depends.items():
            target = services[dependency]
            if target.get("restart") == "no":
                expected = "service_completed_successfully"
            elif target.get("healthcheck"):
                expected = "service_healthy"
            else:
                expected = "service_started"
            assert how.get("condition") == expected, f"{name} -> {dependency}"


def test_the_stack_answers_where_make_up_does(
    stack: dict[str, Any], isolated_environ: pytest.MonkeyPatch
) -> None:
    local = StackConfig()
    published = _published(stack)
    assert published[local.gateway_port] == "gateway"
    assert published[local.moto_port] == "moto"


def test_init_bootstraps_on_moto_from_the_tools_image(stack: dict[str, Any]) -> None:
    services = stack["services"]
    for name in ("init", "moto"):
        dockerfile = image_dockerfile(services[name])
        assert dockerfile is not None
        assert dockerfile.path == TOOLS_DOCKERFILE
    assert services["init"]["depends_on"]["moto"]["condition"] == "service_healthy"
    moto_port = _container_ports("moto", services["moto"], {})[0]
    assert services["init"]["environment"]["RELAY_AWS_ENDPOINT_URL"] == f"http://moto:{moto_port}"


def test_the_collector_writes_traces_to_a_volume_it_can_write(stack: dict[str, Any]) -> None:
    services = stack["services"]
    collector = services["otel-collector"]
    mounts = dict(
        (str(v).split(":")[1], str(v).split(":")[0]) for v in collector["volumes"]
    )  # target -> source
    config_source = mounts["/etc/otelcol-contrib/config.yaml"]
    config = yaml.safe_load((ROOT / config_source).read_text())
    assert "otlp" in config["service"]["pipelines"]["traces"]["receivers"]
    http_endpoint = config["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    # what the services are told matches what the collector listens on
    otlp = services["tasks"]["environment"]["RELAY_OTLP_ENDPOINT"]
    assert urlsplit(otlp).hostname == "otel-collector"
    assert http_endpoint.endswith(f":{urlsplit(otlp).port}")
    # the file exporter writes into the mounted volume...
    (exporter,) = config["service"]["pipelines"]["traces"]["exporters"]
    trace_dir = str(Path(config["exporters"][exporter]["path"]).parent)
    volume = mounts[trace_dir]
    assert volume in stack["volumes"]
    # ...which init mounts first, at a directory its image gives the collector's uid (10001)
    init_mounts = {str(v).split(":")[0]: str(v).split(":")[1] for v in services["init"]["volumes"]}
    owned = init_mounts[volume]
    tools = parse(TOOLS_DOCKERFILE)
    runs = " ".join(i.args for i in tools.final.all("RUN"))
    assert f"chown relay:relay {owned}" in runs
    assert "--uid 10001" in runs
    assert collector["depends_on"]["init"]["condition"] == "service_completed_successfully"
