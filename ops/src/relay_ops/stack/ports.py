"""Fail fast, before anything starts, when a port the stack needs is taken."""

from __future__ import annotations

import socket

from relay_ops.stack.config import SERVICES, StackConfig
from relay_ops.stack.errors import StackError


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        # SO_REUSEADDR: a port left in TIME_WAIT by the last run is free; only a listener counts.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
        return False


def ensure_ports_free(config: StackConfig) -> None:
    programs = ("moto", *SERVICES) if config.runs_moto else SERVICES
    taken = [name for name in programs if port_in_use(config.host, config.port(name))]
    if not taken:
        return
    lines = [
        f"  {config.host}:{config.port(name)} ({name}): choose another with "
        f"RELAY_STACK_{name.upper()}_PORT"
        for name in taken
    ]
    raise StackError(
        "Port already in use, so the stack cannot start:\n"
        + "\n".join(lines)
        + "\nStop whatever is listening there (an earlier `relay up`?) or pick free ports."
    )
