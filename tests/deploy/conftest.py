"""Terraform, run offline: a CLI config whose only provider source is a local filesystem mirror
(hashicorp/aws), a shared plugin cache so each `init` links the provider instead of copying it,
and a copy of terraform/ (and contracts/routing.yaml beside it, where the envs look for it) so
the tests leave no .terraform/, lock file or state in the repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = REPO / "terraform"
ROUTING_FILE = REPO / "contracts" / "routing.yaml"
ENVS = ("local", "dev", "prod")

# Where an offline provider mirror usually lives; RELAY_TF_PLUGIN_MIRROR wins.
MIRROR_ROOTS = (
    "/opt/tf-plugins",
    "~/.terraform.d/plugins",
    "~/.local/share/terraform/plugins",
    "/usr/local/share/terraform/plugins",
    "/usr/share/terraform/plugins",
)
PROVIDER = Path("registry.terraform.io/hashicorp/aws")


def find_plugin_mirror() -> Path | None:
    candidates = [os.environ.get("RELAY_TF_PLUGIN_MIRROR", ""), *MIRROR_ROOTS]
    for candidate in filter(None, candidates):
        root = Path(candidate).expanduser()
        if (root / PROVIDER).is_dir() and any((root / PROVIDER).iterdir()):
            return root
    return None


@dataclass(frozen=True)
class Terraform:
    binary: str
    root: Path  # the copy: root/terraform/..., root/contracts/routing.yaml
    env: Mapping[str, str]

    def env_dir(self, name: str) -> Path:
        return self.root / "terraform" / "envs" / name

    def run(self, cwd: Path, *args: str, timeout: float = 300) -> str:
        done = subprocess.run(
            [self.binary, *args],
            cwd=cwd,
            env=dict(self.env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, (
            f"terraform {' '.join(args)} (in {cwd}) exited {done.returncode}:\n"
            f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        )
        return done.stdout

    def init(self, cwd: Path) -> None:
        self.run(cwd, "init", "-backend=false", "-input=false", "-no-color")

    def json(self, cwd: Path, command: str, *args: str) -> Any:
        """``terraform <command> -json [args]``: flags before positional arguments."""
        return json.loads(self.run(cwd, command, "-json", "-no-color", *args))


@pytest.fixture(scope="session")
def terraform(tmp_path_factory: pytest.TempPathFactory) -> Terraform:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip(
            "SKIPPED LOUDLY: no `terraform` binary on PATH, so the Terraform checks did not run. "
            "Install Terraform >= 1.6 to run them."
        )
    mirror = find_plugin_mirror()
    if mirror is None:
        pytest.fail(
            f"terraform is installed but no offline provider mirror holding {PROVIDER} was found "
            f"(looked in RELAY_TF_PLUGIN_MIRROR and {', '.join(MIRROR_ROOTS)}); set "
            "RELAY_TF_PLUGIN_MIRROR to a filesystem_mirror directory."
        )
    root = tmp_path_factory.mktemp("tf")
    shutil.copytree(
        TERRAFORM_DIR,
        root / "terraform",
        ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate*"),
    )
    (root / "contracts").mkdir()
    shutil.copy(ROUTING_FILE, root / "contracts" / "routing.yaml")

    # Shared across runs: the first init copies the provider (~700 MB) here, later ones link it.
    cache = Path(os.environ.get("TF_PLUGIN_CACHE_DIR", REPO / ".relay" / "terraform-plugins"))
    cache.mkdir(parents=True, exist_ok=True)
    config = root / "terraformrc"
    config.write_text(
        f'provider_installation {{\n  filesystem_mirror {{\n    path = "{mirror}"\n  }}\n}}\n'
    )
    env = {
        **os.environ,
        "TF_CLI_CONFIG_FILE": str(config),
        "TF_PLUGIN_CACHE_DIR": str(cache),
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "CHECKPOINT_DISABLE": "1",
    }
    return Terraform(binary=binary, root=root, env=env)
