"""moto server, the local AWS: started as its own process and spoken to over HTTP."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def moto_command(port: int, host: str = "127.0.0.1") -> list[str]:
    """moto on ``port`` at once, served with keep-alive as AWS serves (ADR 0025)."""
    return [sys.executable, "-m", "relay_ops.stack.moto_door", "--host", host, "--port", str(port)]


def moto_door_command(port: int, host: str, private_port: int) -> list[str]:
    """moto that opens ``port`` only when told (relay_ops.stack.moto_door)."""
    door = ["--host", host, "--port", str(port), "--private-port", str(private_port)]
    return [sys.executable, "-m", "relay_ops.stack.moto_door", *door]


def start_moto(port: int, *, log_path: Path | None = None) -> subprocess.Popen[bytes]:
    out = log_path.open("ab") if log_path else subprocess.DEVNULL
    return subprocess.Popen(moto_command(port), stdout=out, stderr=subprocess.STDOUT)


def wait_until_up(endpoint_url: str, *, timeout: float = 30.0) -> None:
    """Block until moto answers its own API, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{endpoint_url}/moto-api/data.json", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"moto server at {endpoint_url} did not come up in {timeout}s")
        time.sleep(0.1)
