"""One anatomy and one test seam in every service (docs/conventions.md): the files each service
has, the composition root's shape, and fakes only where tests keep them."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
from pathlib import Path

import pytest

from relay_shared.composition import compose

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "pyproject.toml").exists())
# every src/ of the repository: the services, the kit, the operator tools and the dev kit
SOURCE_ROOTS = sorted(p for p in ROOT.glob("**/src") if ".venv" not in p.parts)

REQUIRED_FILES = ("__main__.py", "settings.py", "app.py", "ports.py")
COMPOSITION_ROOT = ("open_ports", "build", "create_app")
FAKE_CLASS_PREFIXES = ("Fake", "InMemory", "Stub", "Mock")


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def _names_called(tree: ast.AST) -> set[str]:
    return {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }


def _fake_classes(path: Path) -> list[str]:
    return [
        node.name
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.ClassDef) and node.name.startswith(FAKE_CLASS_PREFIXES)
    ]


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_the_same_rooms(service: str) -> None:
    home = ROOT / "services" / service
    package = home / "src" / service
    missing = [f for f in REQUIRED_FILES if not (package / f).is_file()]
    missing += [
        f for f in ("README.md", "Dockerfile", "pyproject.toml") if not (home / f).is_file()
    ]
    missing += [f for f in ("tests/unit/fakes.py",) if not (home / f).is_file()]
    assert missing == []


@pytest.mark.parametrize("service", SERVICES)
def test_ports_are_one_frozen_bundle_with_the_loops_it_runs(service: str) -> None:
    ports = importlib.import_module(f"{service}.ports")
    bundle = ports.Ports
    assert dataclasses.is_dataclass(bundle)
    assert bundle.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert "loops" in {f.name for f in dataclasses.fields(bundle)}


@pytest.mark.parametrize("service", SERVICES)
def test_the_composition_root_has_the_one_seam(service: str) -> None:
    app = importlib.import_module(f"{service}.app")
    public = {name for name, _ in inspect.getmembers(app, inspect.isfunction)}
    assert set(COMPOSITION_ROOT) <= public

    create_app = inspect.signature(app.create_app)
    assert list(create_app.parameters) == ["settings", "ports"]
    assert create_app.parameters["settings"].default is None
    assert create_app.parameters["ports"].kind is inspect.Parameter.KEYWORD_ONLY
    assert create_app.parameters["ports"].default is app.open_ports
    assert list(inspect.signature(app.build).parameters) == ["settings", "ports"]
    assert list(inspect.signature(app.open_ports).parameters) == ["settings", "runtime"]
    assert inspect.iscoroutinefunction(app.open_ports)

    # the app is started through the kit's compose(settings, ports, build), nothing else
    create_app_source = _tree(Path(inspect.getfile(app))).body
    called = set().union(
        *(
            _names_called(node)
            for node in create_app_source
            if isinstance(node, ast.FunctionDef) and node.name == "create_app"
        )
    )
    assert {"compose", "create_service_app"} <= called
    assert app.compose is compose


@pytest.mark.parametrize("root", SOURCE_ROOTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_fakes_ship_in_any_src(root: Path) -> None:
    offenders = {
        str(path.relative_to(ROOT)): _fake_classes(path)
        for path in root.rglob("*.py")
        if _fake_classes(path) or path.stem in {"fakes", "memory", "mocks"}
    }
    # the dev kit's fake model endpoints are test equipment by definition
    offenders = {p: c for p, c in offenders.items() if not p.startswith("devkit/")}
    assert offenders == {}


@pytest.mark.parametrize("service", SERVICES)
def test_fakes_live_in_one_file_and_build_the_ports(service: str) -> None:
    tests = ROOT / "services" / service / "tests"
    elsewhere = {
        str(path.relative_to(ROOT)): _fake_classes(path)
        for path in tests.rglob("*.py")
        if path.name != "fakes.py" and _fake_classes(path)
    }
    assert elsewhere == {}, "fake classes belong in tests/unit/fakes.py"
    fakes = _tree(tests / "unit" / "fakes.py")
    bundle = [n for n in fakes.body if isinstance(n, ast.ClassDef) and n.name == "Fakes"]
    assert bundle, "tests/unit/fakes.py ends with a Fakes bundle"
    methods = {n.name for n in bundle[0].body if isinstance(n, ast.FunctionDef)}
    assert "ports" in methods


@pytest.mark.parametrize("service", SERVICES)
def test_unit_tests_use_no_production_adapter(service: str) -> None:
    """Unit tests reach the service only through the seam with fakes: never the production
    adapters (``open_ports``, the repository's SQL)."""
    offenders: dict[str, list[str]] = {}
    for path in (ROOT / "services" / service / "tests" / "unit").rglob("*.py"):
        found = []
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == f"{service}.repository":
                    found.append(node.module)
                found += [a.name for a in node.names if a.name == "open_ports"]
        if found:
            offenders[str(path.relative_to(ROOT))] = found
    assert offenders == {}


def test_the_fake_check_sees_a_fake(tmp_path: Path) -> None:
    # guards the checker itself
    module = tmp_path / "store.py"
    module.write_text("class InMemoryTaskStore:\n    pass\n\nclass TaskStore:\n    pass\n")
    assert _fake_classes(module) == ["InMemoryTaskStore"]
