"""A light WebSocket follower (``websockets``): one connection subscribed to one task, each
event's arrival time, for lag figures beside the SSE follower's (sse.py).

The same follower serves the gateway's ``/v1/ws`` (API key) and the notifier's ``/internal/ws``
(an internal token): the protocol is the notifier's, and the gateway relays it frame for frame.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any

from websockets.asyncio.client import connect

from relay_devkit.bench.sse import Arrival, Followed

EVENT = "event"  # parse_frame's kind for a timeline event; any other kind is a control frame


class SubscriptionFailed(Exception):
    """The server answered the subscription with an ``error`` frame, or closed before ``end``."""


def ws_url(http_url: str, path: str) -> str:
    """The WebSocket URL of ``path`` on a service's HTTP base URL (http → ws, https → wss)."""
    if not http_url.startswith(("http://", "https://")):
        raise ValueError(f"not an HTTP URL: {http_url!r}")
    return "ws" + http_url.rstrip("/").removeprefix("http") + path


def parse_frame(text: str | bytes) -> tuple[str, dict[str, Any]]:
    """A server frame as (kind, frame): ``EVENT`` for a timeline event (the JSON of an SSE
    ``data:`` line, with a ``seq``), else the control frame's ``type`` (``subscribed``,
    ``end``, ``error``, ...)."""
    frame = json.loads(text)
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise ValueError(f"not a frame: {text!r:.80}")
    return (EVENT if "seq" in frame else frame["type"]), frame


async def follow_ws(
    url: str,
    task_id: str,
    *,
    headers: Mapping[str, str],
    after: int = 0,
    within: float = 120,
    opened: asyncio.Event | None = None,
) -> Followed:
    """Subscribe to one task (history after ``after``, then live) and read until its ``end``
    frame; ``opened`` is set when the ``subscribed`` frame arrives, the counterpart of an SSE
    stream's headers (the task was found, its history comes next)."""
    followed = Followed()
    async with (
        asyncio.timeout(within),
        connect(
            url,
            additional_headers=dict(headers),
            compression=None,  # the services refuse permessage-deflate anyway
            ping_interval=None,  # the server pings; the SSE follower adds no traffic either
            proxy=None,
            open_timeout=within,
        ) as connection,
    ):
        subscribe = {"type": "subscribe", "task_id": task_id, "after": after}
        await connection.send(json.dumps(subscribe))
        async for message in connection:
            received = time.time()
            kind, frame = parse_frame(message)
            if kind == EVENT:
                followed.arrivals.append(Arrival(frame["type"], frame, received))
            elif kind == "subscribed":
                followed.opened = received
                if opened is not None:
                    opened.set()
            elif kind == "end":
                return followed
            elif kind == "error":
                raise SubscriptionFailed(f"error {frame.get('status')} {frame.get('title')}")
        raise SubscriptionFailed(f"closed before end ({connection.close_code})")
