"""The WebSocket API of the API Gateway edge (ADR 0016), end to end: the gateway's WebSocket
Lambda handler (gateway/lambda_ws.py) runs in-process with API Gateway's event payloads against
a stack of its own whose notifier keeps connections in moto's DynamoDB and posts frames to
moto's API Gateway management API (notifier/edge.py).

The management API is a moto server in this process, so the test reads what each connection
was sent (moto keeps a connection's posted frames, one after the other). Sync tests: the
handler runs its own event loop, as in a Lambda execution environment.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends
from moto.server import ThreadedMotoServer

from gateway.lambda_ws import LambdaLive, Unauthorized
from relay_devkit.apigateway import websocket_authorizer_event, websocket_event
from relay_devkit.testing import fresh_database
from relay_ops.stack.moto import free_port
from relay_ops.stack.process import RunningStack, running_stack
from relay_ops.stack.topology import ws_connections_table_name

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def management_api(aws_credentials: None) -> Iterator[str]:
    """API Gateway's management API (moto, in this process: its posted frames are readable)."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def edge_stack(
    management_api: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningStack]:
    env = f"ws{uuid.uuid4().hex[:8]}"
    with (
        fresh_database() as database_url,
        running_stack(
            database_url,
            redis_url,
            tmp_path_factory.mktemp("ws-edge-stack"),
            env=env,
            RELAY_EDGE_CONNECTIONS_TABLE=ws_connections_table_name(env),
            RELAY_EDGE_WS_ENDPOINT=management_api,
        ) as up,
    ):
        yield up


@pytest.fixture(scope="module")
def live(edge_stack: RunningStack) -> Iterator[LambdaLive]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in edge_stack.gateway_lambda_environment().items():
            patch.setenv(name, value)
        handler = LambdaLive(ready_timeout=60)
        try:
            yield handler
        finally:
            handler._app.close()
            asyncio.set_event_loop(None)


@pytest.fixture(scope="module")
def keys(edge_stack: RunningStack) -> dict[str, str]:
    return {
        "ours": edge_stack.create_key(f"acme-{uuid.uuid4().hex[:6]}"),
        "theirs": edge_stack.create_key(f"globex-{uuid.uuid4().hex[:6]}"),
    }


def sent_to(connection_id: str) -> list[dict[str, Any]]:
    """The frames posted to a connection so far, in order."""
    backend = apigatewaymanagementapi_backends["123456789012"]["us-east-1"]
    raw = (
        backend.connections[connection_id].data.decode()
        if connection_id in backend.connections
        else ""
    )
    decoder = json.JSONDecoder()
    frames, at = [], 0
    while at < len(raw):
        frame, at = decoder.raw_decode(raw, at)
        frames.append(frame)
    return frames


def frames_until(connection_id: str, done: Any, *, within: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        frames = sent_to(connection_id)
        if done(frames):
            return frames
        time.sleep(0.2)
    raise AssertionError(f"{connection_id} got only {sent_to(connection_id)}")


class Connection:
    """One client connection through the WebSocket API, as API Gateway drives the handler."""

    def __init__(self, live: LambdaLive, *, key: str | None = None, ticket: str | None = None):
        self.live = live
        event = websocket_authorizer_event(
            headers={"Authorization": f"Bearer {key}"} if key else None,
            params={"ticket": ticket} if ticket else None,
        )
        self.id = event["requestContext"]["connectionId"]
        self.authorizer = live(event, None)  # raises Unauthorized
        answer = live(websocket_event("$connect", self.id, authorizer=self.authorizer), None)
        assert answer["statusCode"] == 200, answer

    def send(self, frame: dict[str, Any]) -> None:
        event = websocket_event(
            "$default", self.id, authorizer=self.authorizer, body=json.dumps(frame)
        )
        assert self.live(event, None)["statusCode"] == 200

    def close(self) -> None:
        event = websocket_event("$disconnect", self.id, authorizer=self.authorizer)
        assert self.live(event, None)["statusCode"] == 200


def submit(stack: RunningStack, key: str, prompt: str) -> str:
    answer = httpx.post(
        f"{stack.gateway_url}/v1/tasks",
        json={"prompt": prompt},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    task_id: str = answer.json()["id"]
    return task_id


def connection_items(stack: RunningStack, connection_id: str) -> list[str]:
    dynamodb = boto3.client("dynamodb", endpoint_url=stack.moto_endpoint, region_name="us-east-1")
    answer = dynamodb.query(
        TableName=ws_connections_table_name(stack.config.env),
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"conn#{connection_id}"}},
    )
    return sorted(
        item["sk"]["S"] + (" (finished)" if "done" in item else "") for item in answer["Items"]
    )


def test_connect_refuses_what_v1_ws_refuses(live: LambdaLive, keys: dict[str, str]) -> None:
    with pytest.raises(Unauthorized):
        Connection(live)
    with pytest.raises(Unauthorized):
        Connection(live, key="rk_not_a_key")
    with pytest.raises(Unauthorized):
        Connection(live, ticket="not-a-ticket")


def test_a_ticket_opens_one_connection_once(
    live: LambdaLive, edge_stack: RunningStack, keys: dict[str, str]
) -> None:
    answer = httpx.post(
        f"{edge_stack.gateway_url}/v1/ws-tickets",
        headers={"Authorization": f"Bearer {keys['ours']}"},
        timeout=10,
    )
    ticket = answer.json()["ticket"]
    connection = Connection(live, ticket=ticket)
    assert connection.authorizer["context"]["tenant_id"] == connection.authorizer["principalId"]
    assert connection_items(edge_stack, connection.id) == ["conn"]
    with pytest.raises(Unauthorized):
        Connection(live, ticket=ticket)
    connection.close()
    assert connection_items(edge_stack, connection.id) == []


def test_history_then_live_events_in_order_then_end(
    live: LambdaLive, edge_stack: RunningStack, keys: dict[str, str]
) -> None:
    task_id = submit(edge_stack, keys["ours"], "Live through API Gateway.\n/steps 4\n/sleep 0.3")
    connection = Connection(live, key=keys["ours"])
    connection.send({"type": "ping"})
    connection.send({"type": "subscribe", "task_id": task_id})
    assert "task#" + task_id in connection_items(edge_stack, connection.id)

    frames = frames_until(connection.id, lambda fs: {"type": "end", "task_id": task_id} in fs)
    assert frames[0] == {"type": "pong"}
    assert frames[1] == {"type": "subscribed", "task_id": task_id}
    events, end = frames[2:-1], frames[-1]
    assert end == {"type": "end", "task_id": task_id}
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))  # no gap, no repeat
    assert events[0]["type"] == "task.submitted"
    assert events[-1]["type"] == "task.succeeded"
    assert {e["task_id"] for e in events} == {task_id}
    # the same JSON as the timeline's SSE data lines
    sse = httpx.get(
        f"{edge_stack.gateway_url}/v1/tasks/{task_id}/events",
        headers={"Authorization": f"Bearer {keys['ours']}"},
        timeout=30,
    )
    data = [json.loads(line[5:]) for line in sse.text.splitlines() if line.startswith("data:")]
    assert events == data
    # the finished task's cursor is only a marker now; the connection stays
    assert connection_items(edge_stack, connection.id) == ["conn", f"task#{task_id} (finished)"]

    # subscribing after the end: subscribed, end, nothing else
    connection.send({"type": "subscribe", "task_id": task_id, "after": len(events)})
    later = frames_until(connection.id, lambda fs: len(fs) >= len(frames) + 2)
    assert later[len(frames) :] == [
        {"type": "subscribed", "task_id": task_id},
        {"type": "end", "task_id": task_id},
    ]
    connection.close()
    assert connection_items(edge_stack, connection.id) == []


def test_another_tenants_task_is_not_found_and_unsubscribed(
    live: LambdaLive, edge_stack: RunningStack, keys: dict[str, str]
) -> None:
    theirs = submit(edge_stack, keys["theirs"], "Not yours.\n/steps 1")
    connection = Connection(live, key=keys["ours"])
    connection.send({"type": "subscribe", "task_id": theirs})
    connection.send({"type": "subscribe", "task_id": "not-a-uuid"})
    frames = frames_until(connection.id, lambda fs: len(fs) >= 2)
    assert frames[0]["type"] == "error"
    assert (frames[0]["status"], frames[0]["task_id"]) == (404, theirs)
    assert (frames[1]["type"], frames[1]["status"]) == ("error", 400)
    assert connection_items(edge_stack, connection.id) == ["conn"]
    # a connection id the tenant does not hold takes no frames
    stranger = websocket_event(
        "$default",
        connection.id,
        authorizer={"principalId": "globex", "context": {"tenant_id": "globex"}},
        body=json.dumps({"type": "ping"}),
    )
    assert live(stranger, None)["statusCode"] == 404
    connection.close()


def test_all_tasks_of_the_tenant_live(
    live: LambdaLive, edge_stack: RunningStack, keys: dict[str, str]
) -> None:
    connection = Connection(live, key=keys["ours"])
    connection.send({"type": "subscribe", "task_id": "*"})
    frames_until(connection.id, lambda fs: {"type": "subscribed", "task_id": "*"} in fs)
    theirs = submit(edge_stack, keys["theirs"], "Someone else's.\n/steps 1")
    tasks = [submit(edge_stack, keys["ours"], f"All of them {n}.\n/steps 2") for n in range(3)]

    def finished(frames: list[dict[str, Any]]) -> bool:
        ended = {f["task_id"] for f in frames if f.get("type") == "task.succeeded"}
        return ended >= set(tasks)

    frames_until(connection.id, finished)
    connection.send({"type": "unsubscribe", "task_id": "*"})
    # every frame until then, so that one sent again by a late sender is seen too
    frames = frames_until(connection.id, lambda fs: {"type": "unsubscribed", "task_id": "*"} in fs)
    events = [f for f in frames if "seq" in f]
    assert theirs not in {e["task_id"] for e in events}
    for task_id in tasks:
        seqs = [e["seq"] for e in events if e["task_id"] == task_id]
        # from its first event seen after the subscription on, in order, without gaps
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), (task_id, seqs)
    assert not [f for f in frames if f.get("type") == "end"]  # `*` has no end frames
    assert connection_items(edge_stack, connection.id) == ["conn"]
    connection.close()
