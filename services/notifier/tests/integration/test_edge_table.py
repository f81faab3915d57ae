"""The WebSocket API's AWS adapters (edge_aws.py) against real parts: the connection table on
moto's DynamoDB, created as the local stack creates it, and PostToConnection against a real HTTP
server that answers as API Gateway's management API does for a closed connection (moto's never
answers 410)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiobotocore.session import get_session

from notifier.edge_aws import ApiGatewayPoster, DynamoEdgeConnections
from notifier.ports import ConnectionGone, EdgeCursor
from relay_ops.stack.topology import ws_connections_table

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SOON = datetime.now(UTC) + timedelta(hours=2)


def _in(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


@pytest.fixture
async def table(moto_endpoint: str) -> AsyncIterator[DynamoEdgeConnections]:
    name = ws_connections_table(
        f"t{uuid.uuid4().hex[:8]}", endpoint_url=moto_endpoint, region="us-east-1"
    )
    async with get_session().create_client(
        "dynamodb", region_name="us-east-1", endpoint_url=moto_endpoint
    ) as client:
        yield DynamoEdgeConnections(client, name)


async def test_connections_belong_to_their_tenant_and_leave_with_everything(
    table: DynamoEdgeConnections,
) -> None:
    task = uuid.uuid4()
    await table.add_connection("c1", "acme", expires_at=SOON)
    await table.add_connection("c2", "acme", expires_at=SOON)
    assert await table.tenant_of("c1") == "acme"
    assert await table.add_all_tasks("c1", "acme", SOON)
    assert not await table.add_all_tasks("c1", "acme", SOON)
    assert await table.add_cursor(EdgeCursor("c1", "acme", task, 0, explicit=True), expires_at=SOON)
    assert await table.add_cursor(EdgeCursor("c2", "acme", task, 4), expires_at=SOON)
    assert await table.subscriptions("c1") == 2
    assert await table.following_all("acme") == ["c1"]
    assert await table.following_all("globex") == []
    assert sorted(c.connection_id for c in await table.cursors_of_task(task)) == ["c1", "c2"]

    await table.remove_connection("c1")
    assert await table.tenant_of("c1") is None
    assert await table.following_all("acme") == []
    assert [c.connection_id for c in await table.cursors_of_task(task)] == ["c2"]
    assert await table.subscriptions("c1") == 0


async def test_an_expired_connection_is_none_before_ttl_deletes_it(
    table: DynamoEdgeConnections,
) -> None:
    await table.add_connection("old", "acme", expires_at=_in(-1))
    assert await table.tenant_of("old") is None


async def test_a_lease_has_one_holder_until_released_or_expired(
    table: DynamoEdgeConnections,
) -> None:
    cursor = EdgeCursor("c1", "acme", uuid.uuid4(), 0, explicit=True)
    assert await table.add_cursor(cursor, expires_at=SOON)
    claimed = await table.claim(cursor, owner="a", lease_until=_in(30))
    assert claimed == cursor
    assert await table.claim(cursor, owner="b", lease_until=_in(30)) is None
    assert await table.claim(cursor, owner="a", lease_until=_in(30)) is None  # not twice
    assert not await table.advance(cursor.at(3), owner="b", lease_until=_in(30))
    assert await table.advance(cursor.at(3), owner="a", lease_until=_in(30))
    assert await table.release(cursor, owner="a")
    assert not await table.advance(cursor.at(4), owner="a", lease_until=_in(30))  # released
    reclaimed = await table.claim(cursor, owner="b", lease_until=_in(-1))  # expires at once
    assert reclaimed is not None
    assert reclaimed.after == 3
    assert (await table.claim(cursor, owner="c", lease_until=_in(30))) is not None
    assert not await table.advance(cursor.at(4), owner="b", lease_until=_in(30))

    await table.remove_cursor(cursor.connection_id, cursor.task_id, owner="b")  # not b's now
    assert await table.cursors_of_task(cursor.task_id)
    await table.remove_cursor(cursor.connection_id, cursor.task_id, owner="c")
    assert await table.cursors_of_task(cursor.task_id) == []
    assert await table.claim(cursor, owner="d", lease_until=_in(30)) is None  # gone


async def test_an_explicit_subscription_replaces_the_cursor_all_tasks_made(
    table: DynamoEdgeConnections,
) -> None:
    task = uuid.uuid4()
    await table.add_connection("c1", "acme", expires_at=SOON)
    assert await table.add_all_tasks("c1", "acme", SOON)
    assert await table.add_cursor(EdgeCursor("c1", "acme", task, 7), expires_at=SOON)
    assert not await table.add_cursor(EdgeCursor("c1", "acme", task, 9), expires_at=SOON)
    explicit = EdgeCursor("c1", "acme", task, 0, explicit=True)
    assert await table.add_cursor(explicit, expires_at=SOON, owner="s", lease_until=_in(30))
    assert not await table.add_cursor(explicit, expires_at=SOON)
    assert await table.cursors_of_task(task) == [explicit]
    # unsubscribing `*` leaves the explicit subscription alone
    await table.remove_all_tasks("c1")
    assert await table.cursors_of_task(task) == [explicit]
    assert [c.task_id for c in await table.all_cursors()] == [task]


async def test_a_finished_cursor_is_never_sent_from_or_made_again(
    table: DynamoEdgeConnections,
) -> None:
    task = uuid.uuid4()
    await table.add_connection("c1", "acme", expires_at=SOON)
    cursor = EdgeCursor("c1", "acme", task, 0)
    assert await table.add_cursor(cursor, expires_at=SOON)
    assert await table.claim(cursor, owner="s", lease_until=_in(30)) is not None
    await table.finish(cursor.at(6), owner="someone else")  # not the holder: nothing
    assert await table.cursors_of_task(task) == [cursor]
    await table.finish(cursor.at(6), owner="s")
    assert await table.cursors_of_task(task) == []
    assert await table.all_cursors() == []
    assert await table.claim(cursor, owner="t", lease_until=_in(30)) is None
    assert not await table.add_cursor(cursor.at(4), expires_at=SOON)  # a late fan-out
    assert await table.subscriptions("c1") == 0
    # a client asking for the history again may subscribe explicitly
    explicit = EdgeCursor("c1", "acme", task, 0, explicit=True)
    assert await table.add_cursor(explicit, expires_at=SOON)
    assert await table.cursors_of_task(task) == [explicit]


class _ManagementApi(BaseHTTPRequestHandler):
    """POST /@connections/{id}: 200 for "open", 410 GoneException for anything else."""

    received: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:
        connection = self.path.rsplit("/", 1)[-1]
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.received.append((connection, body))
        if connection == "open":
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        payload = json.dumps({"message": None}).encode()
        self.send_response(410)
        self.send_header("x-amzn-ErrorType", "GoneException")
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def management_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ManagementApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_a_closed_connection_is_gone(management_api: str, aws_credentials: None) -> None:
    async with get_session().create_client(
        "apigatewaymanagementapi", region_name="us-east-1", endpoint_url=management_api
    ) as client:
        poster = ApiGatewayPoster(client)
        await poster.post("open", '{"type": "pong"}')
        with pytest.raises(ConnectionGone):
            await poster.post("closed", '{"type": "pong"}')
    assert _ManagementApi.received[0] == ("open", b'{"type": "pong"}')
