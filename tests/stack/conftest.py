"""Fixtures for the local-stack tests: state dirs and process checks."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


def _alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for a parent that may never reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def alive() -> Callable[[int], bool]:
    return _alive


@pytest.fixture
def state_dir() -> Iterator[Path]:
    """A state dir every user can traverse: as root, a throwaway PostgreSQL runs as another
    user, who cannot enter pytest's private tmp_path."""
    path = Path(tempfile.mkdtemp(prefix="relay-stack-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
