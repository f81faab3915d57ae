"""Reading the Dockerfiles and .dockerignore the way Docker does, enough to check them without
a Docker engine."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "pyproject.toml").exists())
SERVICE_DOCKERFILES = {name: ROOT / "services" / name / "Dockerfile" for name in SERVICES}
TOOLS_DOCKERFILE = ROOT / "deploy" / "tools.Dockerfile"
ALL_DOCKERFILES = [*SERVICE_DOCKERFILES.values(), TOOLS_DOCKERFILE]


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    flags: dict[str, str]  # --from=build, --interval=10s, ...
    args: str  # the rest, as written (continuations joined)

    @property
    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form CMD/ENTRYPOINT/RUN/HEALTHCHECK CMD, else None."""
        text = self.args
        if self.keyword == "HEALTHCHECK":
            if not text.startswith("CMD "):
                return None
            text = text[len("CMD ") :]
        try:
            value = json.loads(text)
        except ValueError:
            return None
        return value if isinstance(value, list) else None


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def env(self, args: dict[str, str]) -> dict[str, str]:
        """The environment this stage's ENV lines leave (variables substituted)."""
        env: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for token in shlex.split(instruction.args):
                name, _, value = token.partition("=")
                env[name] = substitute(value, {**args, **env})
        return env


@dataclass
class Dockerfile:
    path: Path
    args: dict[str, str]  # global ARG defaults (before the first FROM)
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def base_images(self) -> list[str]:
        names = {s.name for s in self.stages if s.name}
        return [substitute(s.base, self.args) for s in self.stages if s.base not in names]


def substitute(text: str, variables: dict[str, str]) -> str:
    return re.sub(
        r"\$\{(\w+)\}|\$(\w+)",
        lambda m: variables.get(m.group(1) or m.group(2), m.group(0)),
        text,
    )


def _flags(text: str) -> tuple[dict[str, str], str]:
    flags: dict[str, str] = {}
    while match := re.match(r"--([\w-]+)(?:=(\S+))?\s+", text):
        flags[match.group(1)] = match.group(2) or ""
        text = text[match.end() :]
    return flags, text


def parse(path: Path) -> Dockerfile:
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # comment lines inside a continuation are dropped, as Docker does
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, f"{path}: a continuation runs off the end"

    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        flags, rest = _flags(rest.strip() + " ")
        rest = rest.strip()
        if keyword == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base=parts[0], name=name))
        elif not stages:
            if keyword == "ARG":
                name, _, default = rest.partition("=")
                args[name] = default
        else:
            stages[-1].instructions.append(Instruction(keyword, flags, rest))
    return Dockerfile(path=path, args=args, stages=stages)


def copy_sources(dockerfile: Dockerfile) -> list[str]:
    """Every path a COPY/ADD takes from the build context (not from another stage)."""
    sources: list[str] = []
    for stage in dockerfile.stages:
        for instruction in stage.instructions:
            if instruction.keyword in {"COPY", "ADD"} and "from" not in instruction.flags:
                *srcs, _dest = instruction.exec_form or shlex.split(instruction.args)
                sources.extend(srcs)
    return sources


@dataclass(frozen=True)
class DockerIgnore:
    """.dockerignore: patterns in order, `!` re-includes, the last match wins; a pattern also
    excludes everything under a directory it matches."""

    patterns: list[tuple[bool, str]]

    @classmethod
    def read(cls, path: Path) -> DockerIgnore:
        patterns = []
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            patterns.append((negated, line.lstrip("!").strip("/")))
        return cls(patterns)

    @staticmethod
    def _matches(pattern: str, path: str) -> bool:
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if pattern.startswith("**/"):
            tail = pattern[3:]
            return any(fnmatch.fnmatchcase(p, tail) for p in parts) or any(
                fnmatch.fnmatchcase(p, pattern) for p in prefixes
            )
        return any(fnmatch.fnmatchcase(p, pattern) for p in prefixes)

    def excludes(self, path: str) -> bool:
        excluded = False
        for negated, pattern in self.patterns:
            if self._matches(pattern, path):
                excluded = not negated
        return excluded
