"""What provisioning PostgreSQL or Redis yields: the URL the services get, and how it was found."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from relay_ops.stack.errors import StackError


@dataclass(frozen=True)
class Provisioned:
    url: str
    # One line for the person at the console, e.g. "throwaway PostgreSQL on 127.0.0.1:40123".
    summary: str
    throwaway: bool = False


async def wait_ready(name: str, probe: Callable[[], bool], *, within: float = 60.0) -> None:
    """Poll a blocking ``probe`` until it answers True; StackError naming ``name`` otherwise."""
    deadline = time.monotonic() + within
    while not await asyncio.to_thread(probe):
        if time.monotonic() > deadline:
            raise StackError(f"{name} did not become ready within {within:g}s", services=(name,))
        await asyncio.sleep(0.2)
