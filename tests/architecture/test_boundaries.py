"""Architecture rules that code review alone would let slip."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from relay_ops.routing import load_routing
from relay_shared.events import CATALOG, CLIENT_VISIBLE_EVENTS

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "pyproject.toml").exists())
TOOLING = {"relay_ops", "relay_devkit"}


def _imported_top_levels(package_dir: Path, root: Path = ROOT) -> dict[str, set[str]]:
    """Top-level module names imported by each file under ``package_dir``."""
    found: dict[str, set[str]] = {}
    for path in package_dir.rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(root))] = names
    return found


def test_the_five_services_exist() -> None:
    assert SERVICES == ["agent", "artifacts", "gateway", "notifier", "tasks"]


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_never_imports_another_service_or_the_tooling(service: str) -> None:
    forbidden = (set(SERVICES) - {service}) | TOOLING
    offenders = {
        path: sorted(names & forbidden)
        for path, names in _imported_top_levels(ROOT / "services" / service / "src").items()
        if names & forbidden
    }
    assert offenders == {}


def test_the_shared_kit_imports_no_service_and_no_tooling() -> None:
    forbidden = set(SERVICES) | TOOLING
    offenders = {
        path: sorted(names & forbidden)
        for path, names in _imported_top_levels(ROOT / "shared" / "src").items()
        if names & forbidden
    }
    assert offenders == {}


def test_operator_tooling_never_imports_the_devkit() -> None:
    # the tools image installs relay-ops alone: an import of the devkit would fail there
    offenders = {
        path: sorted(names & {"relay_devkit", "pytest"})
        for path, names in _imported_top_levels(ROOT / "ops" / "src").items()
        if names & {"relay_devkit", "pytest"}
    }
    assert offenders == {}


def test_the_boundary_check_sees_a_violation(tmp_path: Path) -> None:
    # guards the checker itself: a cross-service import must be found
    package = tmp_path / "src"
    package.mkdir()
    (package / "bad.py").write_text("from tasks.service import TaskService\nimport notifier\n")
    assert _imported_top_levels(package, tmp_path) == {"src/bad.py": {"tasks", "notifier"}}


def test_routing_declares_every_catalog_event_with_its_producer() -> None:
    routing = load_routing()
    assert {name: route.producer for name, route in routing.events.items()} == {
        name: cls.producer for name, cls in CATALOG.items()
    }


def test_routing_names_exactly_the_five_services() -> None:
    assert sorted(load_routing().services) == SERVICES


def test_the_notifier_consumes_exactly_the_client_visible_events() -> None:
    assert set(load_routing().services["notifier"].all_consumed()) == CLIENT_VISIBLE_EVENTS


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_handles_exactly_what_the_routing_declares(service: str) -> None:
    declared = set(load_routing().services[service].all_consumed())
    handlers_path = ROOT / "services" / service / "src" / service / "handlers.py"
    if not declared:
        assert not handlers_path.exists(), f"{service} has handlers but no routes"
        return
    handlers = importlib.import_module(f"{service}.handlers")
    assert set(handlers.HANDLERS) == declared
