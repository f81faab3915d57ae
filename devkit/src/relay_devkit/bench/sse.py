"""A light SSE follower (aiohttp): each event's type, data and arrival time, for lag figures."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp

TERMINAL = frozenset({"task.succeeded", "task.failed", "task.cancelled"})


@dataclass(frozen=True)
class Arrival:
    event: str
    data: dict[str, Any]
    received: float  # time.time()

    @property
    def occurred(self) -> float:
        return datetime.fromisoformat(self.data["occurred_at"].replace("Z", "+00:00")).timestamp()


@dataclass
class Followed:
    opened: float = 0.0  # time.time() when the stream's headers arrived
    arrivals: list[Arrival] = field(default_factory=list)

    def terminal(self) -> Arrival | None:
        return next((a for a in self.arrivals if a.event in TERMINAL), None)

    def live_lags(self) -> list[float]:
        """Occurred → received, for the events that occurred after the stream opened (earlier
        ones are history replayed on connect, not delivery)."""
        return [a.received - a.occurred for a in self.arrivals if a.occurred >= self.opened]


def parse_event(block: str) -> tuple[str, str] | None:
    """One SSE event block (lines up to a blank line) as (event, data); None for a comment or
    heartbeat, which carries no data."""
    event, data = "message", []
    for line in block.splitlines():
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
    return (event, "\n".join(data)) if data else None


async def follow(
    session: aiohttp.ClientSession,
    url: str,
    *,
    within: float = 120,
    opened: asyncio.Event | None = None,
) -> Followed:
    """Read the stream until the server ends it (after the terminal event); ``opened`` is set
    once the stream's headers have arrived."""
    followed = Followed()
    timeout = aiohttp.ClientTimeout(total=within, sock_read=within)
    async with session.get(url, timeout=timeout) as response:
        response.raise_for_status()
        followed.opened = time.time()
        if opened is not None:
            opened.set()
        buffer = ""
        async for chunk in response.content.iter_any():
            received = time.time()
            buffer += chunk.decode()
            buffer = buffer.replace("\r\n", "\n")
            while "\n\n" in buffer:
                block, buffer = buffer.split("\n\n", 1)
                parsed = parse_event(block)
                if parsed is not None:
                    followed.arrivals.append(Arrival(parsed[0], json.loads(parsed[1]), received))
    return followed
