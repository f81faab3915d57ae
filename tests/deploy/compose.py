"""docker-compose.yml and .env.example, read the way Docker Compose reads them (variable
interpolation, YAML merge keys), enough to check them without Docker."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .dockerfiles import ROOT, Dockerfile, parse

COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, $NAME; $$ escapes
_VARIABLE = re.compile(
    r"\$\$|\$\{(?P<braced>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_]\w*)"
)


class MissingVariable(LookupError):
    pass


def load_compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return data


def referenced_variables(text: str) -> set[str]:
    """Every variable the text interpolates."""
    return {
        m.group("braced") or m.group("bare") for m in _VARIABLE.finditer(text) if m.group(0) != "$$"
    }


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep, f"{path}: not NAME=value: {raw!r}"
        values[name.strip()] = value.strip()
    return values


def documented_variables(path: Path) -> dict[str, str]:
    """NAME -> the comment block above its line (one block may explain a group of lines)."""
    docs: dict[str, str] = {}
    comment: list[str] = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line.startswith("#"):
            comment.append(line.lstrip("#").strip())
        elif "=" in line:
            docs[line.partition("=")[0].strip()] = " ".join(comment).strip()
        else:  # a blank line ends the block
            comment = []
    return docs


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's interpolation over a loaded YAML value (strings inside lists and maps)."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("braced") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        current = env.get(name)
        unset_or_empty = current is None or (current == "" and op is not None and ":" in op)
        if op in {"-", ":-"}:
            return arg if (current is None if op == "-" else unset_or_empty) else str(current)
        if op in {"?", ":?"}:
            if current is None if op == "?" else unset_or_empty:
                raise MissingVariable(f"{name}: {arg}")
            return str(current)
        return current or ""

    return _VARIABLE.sub(one, value)


def image_dockerfile(service: dict[str, Any]) -> Dockerfile | None:
    build = service.get("build")
    if not build:
        return None
    return parse(ROOT / build.get("context", ".") / build.get("dockerfile", "Dockerfile"))


def container_environment(service: dict[str, Any], env: dict[str, str]) -> dict[str, str]:
    """What the process in the container sees: the image's ENV, then the compose file's
    `environment` (interpolated with ``env``, as `docker compose` does with .env)."""
    dockerfile = image_dockerfile(service)
    base = dockerfile.final.env(dockerfile.args) if dockerfile else {}
    given = interpolate(service.get("environment") or {}, env)
    if isinstance(given, list):
        given = dict(item.partition("=")[::2] for item in given)
    return {**base, **{k: "" if v is None else str(v) for k, v in given.items()}}
