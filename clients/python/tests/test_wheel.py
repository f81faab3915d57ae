"""The package as a user gets it: `uv build` makes a wheel with the right metadata, the typing
marker and the README as its description, and nothing of the services."""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    private = PACKAGE.parents[1] / ".tools" / "uv" / "bin" / "uv"  # scripts/ensure-uv's
    # `uv run` says where it is in UV; else the one on PATH, else the project's private one
    uv = os.environ.get("UV") or shutil.which("uv") or (str(private) if private.exists() else None)
    if uv is None:
        pytest.fail("uv not found: `make install` installs it (scripts/ensure-uv)", pytrace=False)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(out), str(PACKAGE)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("relay_client-*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_has_the_package_its_typing_marker_and_nothing_else(
    wheel: zipfile.ZipFile,
) -> None:
    names = wheel.namelist()
    assert "relay_client/py.typed" in names
    assert "relay_client/__init__.py" in names
    top = {name.split("/", 1)[0] for name in names}
    assert top == {"relay_client", "relay_client-0.1.0.dist-info"}


def test_its_metadata_names_it_its_needs_and_its_readme(wheel: zipfile.ZipFile) -> None:
    metadata = Parser().parsestr(wheel.read("relay_client-0.1.0.dist-info/METADATA").decode())
    assert metadata["Name"] == "relay-client"
    assert metadata["Requires-Python"] == ">=3.11"
    needs = metadata.get_all("Requires-Dist") or []
    base = {req.split(">=")[0] for req in needs if "extra ==" not in req}
    cli = {req.split(">=")[0] for req in needs if "extra == 'cli'" in req.replace('"', "'")}
    assert base == {"httpx", "httpx-sse", "pydantic", "standardwebhooks", "tenacity"}
    assert cli == {"typer", "rich"}  # the command-line client: pip install 'relay-client[cli]'
    entry_points = wheel.read("relay_client-0.1.0.dist-info/entry_points.txt").decode()
    assert "relay-client = relay_client.cli:main" in entry_points
    assert "Typing :: Typed" in (metadata.get_all("Classifier") or [])
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert str(metadata.get_payload()).startswith("# relay-client")
