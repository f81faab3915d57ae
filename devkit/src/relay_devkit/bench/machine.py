"""Facts about the machine and the versions a run used."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import psycopg


def _first(path: str, prefix: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def facts(database_url: str) -> dict[str, str]:
    kib = _first("/proc/meminfo", "MemTotal").split()[0]
    ram = f"{int(kib) / 1024 / 1024:.1f} GiB" if kib.isdigit() else "?"
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    try:
        redis = (
            subprocess.run(
                ["redis-server", "--version"],
                capture_output=True,
                text=True,
                check=False,
                timeout=5,
            )
            .stdout.split()[2]
            .removeprefix("v=")
        )
    except (OSError, IndexError, subprocess.SubprocessError):
        redis = "?"
    return {
        "CPUs (nproc)": str(os.cpu_count()),
        "CPU model": _first("/proc/cpuinfo", "model name"),
        "RAM": ram,
        "Kernel": platform.release(),
        "Python": platform.python_version(),
        "PostgreSQL": row[0] if row else "?",
        "Redis (server on PATH)": redis,
        "moto": metadata.version("moto"),
        "uvicorn / FastAPI": f"{metadata.version('uvicorn')} / {metadata.version('fastapi')}",
        "aiohttp (load generator)": metadata.version("aiohttp"),
    }
