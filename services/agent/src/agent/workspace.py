"""A run's private directory. Every path the model names is confined to it.

Refusals raise WorkspaceError, which the tools turn into an ``is_error`` tool result: the model
sees what it did wrong and the run goes on.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import unicodedata
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

# Every written file becomes an artifact; names the artifacts service would refuse are refused
# here already, so the model hears about it while it can still pick another name.
MAX_NAME_CHARS = 255
_DRIVE = re.compile(r"^[A-Za-z]:")


class WorkspaceError(ValueError):
    """The model asked for something the workspace refuses (bad path, too big, missing)."""


class Workspace:
    def __init__(self, root: Path, *, max_file_bytes: int) -> None:
        self.root = root.resolve()
        self.max_file_bytes = max_file_bytes

    @classmethod
    def create(cls, parent: Path | None, label: str, *, max_file_bytes: int) -> Workspace:
        """A fresh, uniquely named directory, so two attempts of a task never share one."""
        if parent is not None:
            parent.mkdir(parents=True, exist_ok=True)
        return cls(
            Path(tempfile.mkdtemp(prefix=f"relay-{label}-", dir=parent)),
            max_file_bytes=max_file_bytes,
        )

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def name_of(self, path: str) -> str:
        """The canonical relative name of ``path`` ('./a//b.md' -> 'a/b.md')."""
        return self._locate(path)[0]

    def write(self, path: str, data: bytes) -> str:
        """Write ``data`` at ``path``; returns the file's canonical name."""
        if len(data) > self.max_file_bytes:
            raise WorkspaceError(
                f"{path}: {len(data)} bytes is over the {self.max_file_bytes}-byte file limit"
            )
        name, target = self._locate(path)
        if target.is_dir():
            raise WorkspaceError(f"{name} is a directory")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        except (NotADirectoryError, FileExistsError) as exc:
            raise WorkspaceError(f"{name}: a parent of this path is a file") from exc
        return name

    def read(self, path: str) -> bytes:
        name, target = self._locate(path)
        if not target.is_file():
            raise WorkspaceError(f"{name}: no such file")
        if target.stat().st_size > self.max_file_bytes:
            raise WorkspaceError(f"{name} is over the {self.max_file_bytes}-byte file limit")
        return target.read_bytes()

    def files(self) -> list[str]:
        return sorted(
            p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file()
        )

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())

    def snapshot(self) -> dict[str, bytes]:
        """Every file by its name: what a run waiting for input keeps (checkpoints.py)."""
        return {name: self.root.joinpath(name).read_bytes() for name in self.files()}

    def restore(self, files: Mapping[str, bytes]) -> None:
        """Write back a snapshot, under the same rules as any write."""
        for name, data in files.items():
            self.write(name, data)

    def _locate(self, path: str) -> tuple[str, Path]:
        if not path:
            raise WorkspaceError("a file path is required")
        if any(unicodedata.category(char) == "Cc" for char in path):
            raise WorkspaceError(f"{path!r}: control characters are not allowed in a path")
        pure = PurePosixPath(path.replace("\\", "/"))
        if pure.is_absolute() or _DRIVE.match(path):
            raise WorkspaceError(f"{path}: absolute paths are not allowed; use a relative path")
        if ".." in path:
            raise WorkspaceError(f"{path}: '..' is not allowed in a path")
        parts = [p for p in pure.parts if p != "."]
        if not parts:
            raise WorkspaceError(f"{path}: the path names no file")
        if len(name := PurePosixPath(*parts).as_posix()) > MAX_NAME_CHARS:
            raise WorkspaceError(f"{path}: a path may have at most {MAX_NAME_CHARS} characters")
        target = self.root.joinpath(*parts)
        # resolve() follows symlinks: a link that points outside the workspace is caught here
        if not target.resolve().is_relative_to(self.root):
            raise WorkspaceError(f"{path}: the path leads outside the workspace")
        return name, target.resolve()
