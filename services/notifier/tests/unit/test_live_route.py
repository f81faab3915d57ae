"""``/internal/ws`` through the composition root, on the in-memory fakes: only the gateway's
signed token opens it, and the tenant comes from that token."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from starlette.websockets import WebSocketDisconnect
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from notifier.service import Notifier
from relay_devkit.testing import ready_client, serve_app

from .conftest import ISSUER

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-token"},
        ISSUER.headers(audience="tasks", tenant_id="acme"),  # a token for another service
    ],
)
def test_without_a_token_for_the_notifier_the_connection_closes_4401(
    app: FastAPI, headers: dict[str, str]
) -> None:
    with (
        ready_client(app) as client,
        client.websocket_connect("/internal/ws", headers=headers) as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_text()
    assert closed.value.code == 4401


def test_the_tokens_tenant_is_the_connections_tenant(app: FastAPI, task_events: Callable) -> None:
    mine, theirs = task_events(), task_events(tenant_id="globex")
    with ready_client(app) as client:
        notifier: Notifier = app.state.service
        for t in (mine, theirs):
            for event in t.run(steps=1):
                client.portal.call(notifier.timelines.record, event)  # type: ignore[union-attr]
        headers = ISSUER.headers(audience="notifier", tenant_id="acme")
        with client.websocket_connect("/internal/ws", headers=headers) as ws:
            ws.send_json({"type": "subscribe", "task_id": str(theirs.task_id)})
            assert ws.receive_json()["status"] == 404
            ws.send_json({"type": "subscribe", "task_id": str(mine.task_id)})
            frames = [ws.receive_json() for _ in range(7)]
    assert [f.get("seq") for f in frames] == [None, 1, 2, 3, 4, 5, None]
    assert frames[-1] == {"type": "end", "task_id": str(mine.task_id)}


def test_binary_frames_are_refused_with_an_error(app: FastAPI) -> None:
    headers = ISSUER.headers(audience="notifier", tenant_id="acme")
    with (
        ready_client(app) as client,
        client.websocket_connect("/internal/ws", headers=headers) as ws,
    ):
        ws.send_bytes(b"\x00\x01")
        assert ws.receive_json()["status"] == 400
        ws.send_json({"type": "ping"})
        assert ws.receive_json() == {"type": "pong"}


async def test_a_server_that_stops_closes_live_connections_with_1012_at_once(
    app: FastAPI, task_events: Callable
) -> None:
    t = task_events()
    headers = ISSUER.headers(audience="notifier", tenant_id="acme")
    started = time.monotonic()
    async with serve_app(app) as url:
        notifier: Notifier = app.state.service
        await notifier.timelines.record(t.submitted())
        ws_url = "ws" + url.removeprefix("http") + "/internal/ws"
        client = await connect(ws_url, additional_headers=headers)
        await client.send(json.dumps({"type": "subscribe", "task_id": str(t.task_id)}))
        assert json.loads(await client.recv())["type"] == "subscribed"
        assert json.loads(await client.recv())["seq"] == 1
        started = time.monotonic()
    with pytest.raises(ConnectionClosed) as closed:
        await client.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1012
    assert time.monotonic() - started < 5  # not the shutdown grace: the session ended at once
