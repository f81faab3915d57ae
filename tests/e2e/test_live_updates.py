"""Live updates over WebSocket (`/v1/ws`) and tickets (`POST /v1/ws-tickets`, `?ticket=`), through
the public API of a real `relay up` (DESIGN.md, *Live updates over WebSocket*).

Most tests use the session's stack. Those that need small limits -- a ticket TTL to wait out,
protocol pings every few seconds, a short send queue, a subscription cap -- or that kill a
service share one stack of this module (``live_stack``); the kills come last in the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from httpx_sse import aconnect_sse
from websockets.asyncio.client import ClientConnection
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from relay_devkit.api_client import PublicApi, TimelineEvent
from relay_devkit.testing import fresh_database
from relay_ops.stack.process import RunningStack, running_stack

pytestmark = pytest.mark.e2e

TERMINAL = {"task.succeeded", "task.failed", "task.cancelled"}
CONTROL = {"subscribed", "unsubscribed", "pong", "end", "error"}

# The module's own stack: small limits, so that each limit can be reached in seconds.
TICKET_TTL = 5  # the smallest the gateway allows
PING_INTERVAL = 6.0
SEND_TIMEOUT = 1.0  # how long a full send queue waits for room before the client is too slow
SEND_QUEUE = 10  # a resumed subscription's history in these tests is shorter
MAX_SUBSCRIPTIONS = 3
LIVE_STACK_ENV = {
    "RELAY_WS_TICKET_TTL_SECONDS": str(TICKET_TTL),
    "RELAY_WS_PING_INTERVAL_SECONDS": str(PING_INTERVAL),
    "RELAY_WS_SEND_QUEUE_FRAMES": str(SEND_QUEUE),
    # a full queue gives up well within the keepalive's two ping intervals
    "RELAY_WS_SEND_TIMEOUT_SECONDS": str(SEND_TIMEOUT),
    "RELAY_WS_MAX_SUBSCRIPTIONS": str(MAX_SUBSCRIPTIONS),
    # the restart tests: a killed notifier's unfinished messages come back within seconds
    "RELAY_CONSUMER_VISIBILITY_TIMEOUT": "10",
    "RELAY_RUN_LEASE_SECONDS": "4",
    "RELAY_SHUTDOWN_GRACE_SECONDS": "5",
    "RELAY_STACK_RESTART_MAX_SECONDS": "1",
}


# --- helpers -----------------------------------------------------------------------------------


async def recv_text(ws: ClientConnection, *, within: float = 30) -> str:
    async with asyncio.timeout(within):
        message = await ws.recv()
    assert isinstance(message, str), f"a binary frame from the server: {message!r}"
    return message


async def recv_frame(ws: ClientConnection, *, within: float = 30) -> dict[str, Any]:
    frame = json.loads(await recv_text(ws, within=within))
    assert isinstance(frame, dict), frame
    return frame


async def send(ws: ClientConnection, **frame: Any) -> None:
    await ws.send(json.dumps(frame))


async def next_control(ws: ClientConnection, *, within: float = 30) -> dict[str, Any]:
    """The next control frame, skipping timeline events."""
    while True:
        frame = await recv_frame(ws, within=within)
        if frame["type"] in CONTROL:
            return frame


async def follow(ws: ClientConnection, task_id: str, *, after: int | None = None) -> list[str]:
    """Subscribe to one task and return its events (the frames' text) up to the `end` frame;
    no other frame may come in between."""
    await send(ws, type="subscribe", task_id=task_id, **({} if after is None else {"after": after}))
    assert await recv_frame(ws) == {"type": "subscribed", "task_id": task_id}
    return await until_end(ws, task_id)


async def until_end(ws: ClientConnection, task_id: str) -> list[str]:
    """The subscribed task's events (the frames' text) up to its `end` frame."""
    events: list[str] = []
    while True:
        text = await recv_text(ws, within=60)
        frame = json.loads(text)
        if frame["type"] == "end":
            assert frame == {"type": "end", "task_id": task_id}
            return events
        assert frame["type"] not in CONTROL, frame
        assert frame["task_id"] == task_id, frame
        events.append(text)


def parsed(texts: list[str]) -> list[dict[str, Any]]:
    """Frames as JSON values. The same event is the same JSON, but not always the same text:
    one read from the database has its ``data`` keys in PostgreSQL's jsonb order, one
    delivered live in the producer's order (for SSE as for WebSocket)."""
    return [json.loads(t) for t in texts]


def seqs(texts: list[str]) -> list[int]:
    return [json.loads(t)["seq"] for t in texts]


def assert_whole_timeline(texts: list[str]) -> None:
    """seq 1..n without gaps or repeats, ending with the (only) terminal event."""
    frames = [json.loads(t) for t in texts]
    assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))
    assert frames[-1]["type"] in TERMINAL
    assert sum(f["type"] in TERMINAL for f in frames) == 1


async def sse_data(api: PublicApi, task_id: str) -> list[str]:
    """The `data:` lines of the task's SSE stream, once the stream has ended."""
    async with aconnect_sse(
        api.http, "GET", f"/v1/tasks/{task_id}/events", timeout=httpx.Timeout(60)
    ) as source:
        assert source.response.status_code == 200
        return [sse.data async for sse in source.aiter_sse() if sse.data]


async def wait_for_seq(api: PublicApi, task_id: str, seq: int) -> None:
    """Until the task's timeline holds ``seq`` (read from SSE, which is then left)."""
    async with (
        asyncio.timeout(60),
        aconnect_sse(
            api.http, "GET", f"/v1/tasks/{task_id}/events", timeout=httpx.Timeout(60)
        ) as source,
    ):
        async for sse in source.aiter_sse():
            if sse.data and int(sse.id) >= seq:
                return
    raise AssertionError(f"the timeline of {task_id} ended before seq {seq}")


async def events_until_closed(ws: ClientConnection, into: list[str]) -> ConnectionClosed:
    """Read events into ``into`` until the connection closes; how it closed."""
    try:
        while True:
            text = await recv_text(ws, within=60)
            assert json.loads(text)["type"] not in CONTROL, text
            into.append(text)
    except ConnectionClosed as closed:
        return closed


async def assert_refused(connection: Any) -> None:
    """The server accepts the upgrade, then closes with 4401 before any data."""
    async with connection as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await recv_text(ws, within=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401


class RawClient:
    """A WebSocket client on websockets' sans-I/O protocol over a plain socket. It reads only
    when asked to, and answers pings only if ``answer`` is set, so a test can watch protocol
    pings, or be a peer that stops reading or stops answering."""

    def __init__(self, sock: socket.socket, protocol: ClientProtocol, *, answer: bool) -> None:
        self.sock = sock
        self.protocol = protocol
        self.answer = answer
        self.pings: list[float] = []  # when each protocol ping arrived
        self.texts: list[str] = []
        self.eof = False
        self.closed_at: float | None = None  # when the server's close frame (or EOF) arrived

    @classmethod
    async def open(
        cls,
        api: PublicApi,
        *,
        answer: bool = True,
        rcvbuf: int | None = None,
        maxseg: int | None = None,
    ) -> RawClient:
        url = api.http.base_url
        assert url.host
        assert url.port
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if maxseg is not None:  # the MSS the server may use, and so how much it buffers
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, maxseg)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (url.host, url.port))
        protocol = ClientProtocol(parse_uri(f"ws://{url.host}:{url.port}/v1/ws"))
        request = protocol.connect()
        request.headers["Authorization"] = f"Bearer {api.key}"
        protocol.send_request(request)
        client = cls(sock, protocol, answer=True)
        await client._flush()
        async with asyncio.timeout(10):
            while protocol.state is State.CONNECTING:
                await client.read()
        assert protocol.state is State.OPEN, protocol.handshake_exc
        client.answer = answer
        return client

    async def _flush(self) -> None:
        data = b"".join(self.protocol.data_to_send())
        if data and self.answer and not self.eof:
            with contextlib.suppress(OSError):  # the server may be gone already
                await asyncio.get_running_loop().sock_sendall(self.sock, data)

    async def send(self, **frame: Any) -> None:
        self.protocol.send_text(json.dumps(frame).encode())
        await self._flush()

    async def read(self) -> list[Frame]:
        """The frames of one read from the socket (waiting for it)."""
        try:
            data = await asyncio.get_running_loop().sock_recv(self.sock, 65536)
        except ConnectionResetError:
            data = b""
        now = time.monotonic()
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
            self.eof = True
            self.closed_at = self.closed_at or now
        frames = [e for e in self.protocol.events_received() if isinstance(e, Frame)]
        for frame in frames:
            if frame.opcode is Opcode.PING:
                self.pings.append(now)
            elif frame.opcode is Opcode.TEXT:
                self.texts.append(bytes(frame.data).decode())
            elif frame.opcode is Opcode.CLOSE:
                self.closed_at = self.closed_at or now
        await self._flush()  # pongs, if answering
        return frames

    async def read_until(self, done: Callable[[], bool], *, within: float) -> None:
        async with asyncio.timeout(within):
            while not done() and not self.eof:
                await self.read()

    async def read_to_the_end(self, *, within: float = 30) -> int | None:
        """Everything up to the end of the connection; the close code received (None: none)."""
        await self.read_until(lambda: False, within=within)
        close = self.protocol.close_rcvd
        return None if close is None else close.code

    def close(self) -> None:
        self.sock.close()


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def star_key(stack: RunningStack) -> str:
    """A tenant of its own on the session's stack, so that `*` sees only this module's tasks
    (tasks of other test modules may still be finishing under the shared tenant)."""
    return stack.create_key(f"star-{uuid.uuid4().hex[:6]}")


@pytest.fixture
async def star_api(stack: RunningStack, star_key: str) -> AsyncIterator[PublicApi]:
    client = PublicApi(stack.gateway_url, star_key)
    yield client
    await client.aclose()


@pytest.fixture(scope="module")
def live_stack(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory, aws_credentials: None
) -> Iterator[RunningStack]:
    with (
        fresh_database() as database_url,
        running_stack(
            database_url, redis_url, tmp_path_factory.mktemp("live-stack"), **LIVE_STACK_ENV
        ) as up,
    ):
        yield up


@pytest.fixture(scope="module")
def live_key(live_stack: RunningStack) -> str:
    return live_stack.create_key(f"live-{uuid.uuid4().hex[:6]}")


@pytest.fixture(scope="module")
def early_tickets(live_stack: RunningStack, live_key: str) -> tuple[float, list[str]]:
    """Two tickets issued with the first test on the module's stack, and when: the expiry
    test runs later and waits only for what is left of their TTL (usually nothing)."""
    with httpx.Client(
        base_url=live_stack.gateway_url, headers={"Authorization": f"Bearer {live_key}"}
    ) as http:
        issued = time.monotonic()
        answers = [http.post("/v1/ws-tickets") for _ in range(2)]
    assert [a.status_code for a in answers] == [201, 201]
    assert [a.json()["expires_in"] for a in answers] == [TICKET_TTL, TICKET_TTL]
    return issued, [a.json()["ticket"] for a in answers]


@pytest.fixture
async def live_api(
    live_stack: RunningStack,
    live_key: str,
    early_tickets: tuple[float, list[str]],  # issued with the module's first test
) -> AsyncIterator[PublicApi]:
    client = PublicApi(live_stack.gateway_url, live_key)
    yield client
    await client.aclose()


@pytest.fixture
async def live_anonymous(live_stack: RunningStack) -> AsyncIterator[PublicApi]:
    client = PublicApi(live_stack.gateway_url, None)
    yield client
    await client.aclose()


# --- tickets and authentication (the session's stack) ------------------------------------------


async def test_a_ticket_needs_the_key_and_is_never_cached(
    api: PublicApi, anonymous: PublicApi
) -> None:
    answer = await api.http.post("/v1/ws-tickets")
    assert answer.status_code == 201
    assert answer.headers["content-type"].startswith("application/json")
    assert "no-store" in answer.headers["cache-control"]
    body = answer.json()
    assert set(body) == {"ticket", "expires_in"}
    assert body["expires_in"] == 30
    assert isinstance(body["ticket"], str)
    assert api.key
    assert api.key not in body["ticket"]
    assert await api.ws_ticket() != body["ticket"]

    refused = await anonymous.http.post("/v1/ws-tickets")
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")
    wrong = await anonymous.http.post(
        "/v1/ws-tickets", headers={"Authorization": "Bearer rly_not-a-key"}
    )
    assert wrong.status_code == 401


async def test_a_ticket_opens_one_connection_or_one_stream_once(
    api: PublicApi, anonymous: PublicApi
) -> None:
    task = await api.submit("/steps 1")
    timeline = await sse_data(api, task["id"])

    ticket = await api.ws_ticket()
    async with anonymous.live(ticket=ticket) as ws:
        assert parsed(await follow(ws, task["id"])) == parsed(timeline)
    await assert_refused(anonymous.live(ticket=ticket))  # used
    used_on_ws = await anonymous.http.get(
        f"/v1/tasks/{task['id']}/events", params={"ticket": ticket}
    )
    assert used_on_ws.status_code == 401  # a ticket is one connection of either kind

    ticket = await api.ws_ticket()
    async with aconnect_sse(
        anonymous.http, "GET", f"/v1/tasks/{task['id']}/events", params={"ticket": ticket}
    ) as source:
        assert source.response.status_code == 200
        assert parsed([sse.data async for sse in source.aiter_sse() if sse.data]) == parsed(
            timeline
        )
    again = await anonymous.http.get(f"/v1/tasks/{task['id']}/events", params={"ticket": ticket})
    assert again.status_code == 401
    assert again.headers["content-type"].startswith("application/problem+json")
    await assert_refused(anonymous.live(ticket=ticket))


async def test_a_ticket_is_bound_to_its_tenant(
    api: PublicApi, other_api: PublicApi, anonymous: PublicApi
) -> None:
    theirs = await other_api.submit("/steps 1")
    mine = await api.submit("/steps 1")
    await asyncio.gather(sse_data(other_api, theirs["id"]), sse_data(api, mine["id"]))

    async with anonymous.live(ticket=await api.ws_ticket()) as ws:
        await send(ws, type="subscribe", task_id=theirs["id"])
        error = await recv_frame(ws)
        assert error["type"] == "error"
        assert (error["status"], error["task_id"]) == (404, theirs["id"])
        assert parsed(await follow(ws, mine["id"])) == parsed(await sse_data(api, mine["id"]))

    sse = await anonymous.http.get(
        f"/v1/tasks/{theirs['id']}/events", params={"ticket": await api.ws_ticket()}
    )
    assert sse.status_code == 404
    assert theirs["prompt"] not in sse.text


@pytest.mark.parametrize(
    "how",
    [
        "no credentials",
        "an unknown key",
        "another scheme",
        "a junk ticket",
        "an unknown ticket",
        "the key as a ticket",
    ],
)
async def test_a_connection_without_valid_credentials_closes_4401_before_any_data(
    api: PublicApi, anonymous: PublicApi, how: str
) -> None:
    assert api.key
    connection = {
        "no credentials": anonymous.live(),
        "an unknown key": anonymous.live(headers={"Authorization": "Bearer rly_not-a-key"}),
        "another scheme": anonymous.live(headers={"Authorization": f"Basic {api.key}"}),
        "a junk ticket": anonymous.live(ticket="junk"),
        "an unknown ticket": anonymous.live(ticket="rlt_" + "A" * 43),
        "the key as a ticket": anonymous.live(ticket=api.key),
    }[how]
    await assert_refused(connection)


# --- what a subscription delivers (the session's stack) ----------------------------------------


async def test_history_then_live_events_in_order_without_gaps_as_sse_sends_them(
    api: PublicApi,
) -> None:
    task = await api.submit("History and live.\n/steps 8\n/sleep 0.3")
    # Seqs 1-4 are in the timeline before the subscription, so they come from the database;
    # the six replies still to come take at least 1.8 s, so the rest comes live.
    await wait_for_seq(api, task["id"], 4)
    subscribed = time.monotonic()
    async with api.live() as ws:
        events = await follow(ws, task["id"], after=0)
    assert time.monotonic() - subscribed > 1.0  # events kept coming after the history
    assert_whole_timeline(events)
    assert len(events) >= 12  # submitted, started, 8 steps, the artifact, succeeded
    # each frame is the JSON of the SSE `data:` line
    assert parsed(events) == parsed(await sse_data(api, task["id"]))
    first = json.loads(events[0])
    assert {"type", "seq", "task_id", "occurred_at", "data"} <= set(first)
    assert first["type"] == "task.submitted"


async def test_after_resumes_after_the_given_seq(api: PublicApi) -> None:
    task = await api.submit("/steps 3")
    timeline = await sse_data(api, task["id"])
    async with api.live() as ws:
        assert parsed(await follow(ws, task["id"], after=3)) == parsed(timeline[3:])
        assert seqs(timeline[3:])[0] == 4
        # after the terminal event there is nothing to follow: subscribed, then end at once
        assert await follow(ws, task["id"], after=len(timeline)) == []
        assert await follow(ws, task["id"], after=len(timeline) + 5) == []
        assert parsed(await follow(ws, task["id"])) == parsed(timeline)  # `after` is 0


def connections_to(port: int) -> int:
    """Established TCP connections to ``port`` on this machine (/proc/net/tcp: the remote
    address's port is the third field's hex after the colon; state 01 is ESTABLISHED)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                count += fields[3] == "01" and int(fields[2].rsplit(":", 1)[1], 16) == port
    return count


async def test_clients_following_one_task_share_one_notifier_connection(
    api: PublicApi, stack: RunningStack
) -> None:
    task = await api.submit("Followed by many.\n/steps 4\n/sleep 0.5")
    notifier_port = urlsplit(stack.config.url("notifier")).port
    assert notifier_port is not None
    before = connections_to(notifier_port)
    async with contextlib.AsyncExitStack() as clients:
        sockets = [await clients.enter_async_context(api.live()) for _ in range(20)]
        for ws in sockets:
            await send(ws, type="subscribe", task_id=task["id"])
            assert await recv_frame(ws) == {"type": "subscribed", "task_id": task["id"]}
        during = connections_to(notifier_port)  # every client subscribed and connected
        timelines = await asyncio.gather(*(until_end(ws, task["id"]) for ws in sockets))
    # with a notifier connection per client it would be 20 more
    assert during - before <= 1, (before, during)
    for events in timelines:
        assert_whole_timeline(events)
        assert parsed(events) == parsed(timelines[0])


async def test_star_follows_every_task_of_the_tenant_and_nothing_else(
    star_api: PublicApi, other_api: PublicApi
) -> None:
    api = star_api
    async with api.live() as ws:
        await send(ws, type="subscribe", task_id="*")
        assert await recv_frame(ws) == {"type": "subscribed", "task_id": "*"}
        theirs = await other_api.submit("Not yours.\n/steps 2")
        mine = await asyncio.gather(api.submit("One.\n/steps 2"), api.submit("Two.\n/steps 3"))
        ids = {t["id"] for t in mine}
        received: dict[str, list[str]] = {i: [] for i in ids}
        while not all(r and json.loads(r[-1])["type"] in TERMINAL for r in received.values()):
            text = await recv_text(ws, within=60)
            frame = json.loads(text)
            assert frame["type"] not in CONTROL, frame  # `*` sends events only
            assert frame["task_id"] in ids, frame
            received[frame["task_id"]].append(text)
        await sse_data(other_api, theirs["id"])
        await send(ws, type="ping")
        assert await recv_frame(ws) == {"type": "pong"}  # nothing of the other tenant's task
    for task in mine:
        assert_whole_timeline(received[task["id"]])
        assert parsed(received[task["id"]]) == parsed(await sse_data(api, task["id"]))


async def test_a_task_with_its_own_subscription_is_not_sent_again_by_star(
    star_api: PublicApi,
) -> None:
    api = star_api
    own = await api.submit("Own subscription.\n/steps 3\n/sleep 0.2")
    async with api.live() as ws:
        await send(ws, type="subscribe", task_id=own["id"])
        assert await recv_frame(ws) == {"type": "subscribed", "task_id": own["id"]}
        await send(ws, type="subscribe", task_id="*")
        other = await api.submit("Through star.\n/steps 2")
        received: dict[str, list[str]] = {own["id"]: [], other["id"]: []}
        ended = False

        def other_finished() -> bool:
            last = received[other["id"]][-1:]
            return bool(last) and json.loads(last[0])["type"] in TERMINAL

        while not (ended and other_finished()):
            text = await recv_text(ws, within=60)
            frame = json.loads(text)
            if frame["type"] == "subscribed":
                assert frame["task_id"] == "*"
            elif frame["type"] == "end":
                assert frame["task_id"] == own["id"]
                ended = True
            else:
                assert frame["type"] not in CONTROL, frame
                received[frame["task_id"]].append(text)
    assert parsed(received[own["id"]]) == parsed(await sse_data(api, own["id"]))
    assert parsed(received[other["id"]]) == parsed(await sse_data(api, other["id"]))


async def test_another_tenants_task_and_an_unknown_task_get_404_and_stay_unsubscribed(
    api: PublicApi, other_api: PublicApi
) -> None:
    theirs = await other_api.submit("Secret.\n/steps 2\n/sleep 0.2")
    unknown = str(uuid.uuid4())
    async with api.live() as ws:
        for task_id in (theirs["id"], unknown):
            await send(ws, type="subscribe", task_id=task_id)
            error = await recv_frame(ws)
            assert error["type"] == "error"
            assert (error["status"], error["task_id"]) == (404, task_id)
            assert error["title"]
            assert "Secret" not in json.dumps(error)
        await sse_data(other_api, theirs["id"])  # their task ran to the end meanwhile
        await send(ws, type="ping")
        assert await recv_frame(ws) == {"type": "pong"}  # and none of it reached this client
        await send(ws, type="unsubscribe", task_id=theirs["id"])
        assert await recv_frame(ws) == {"type": "unsubscribed", "task_id": theirs["id"]}


async def test_unsubscribe_stops_the_events(api: PublicApi) -> None:
    task = await api.submit("/steps 6\n/sleep 0.3")
    async with api.live() as ws:
        await send(ws, type="subscribe", task_id=task["id"])
        assert await recv_frame(ws) == {"type": "subscribed", "task_id": task["id"]}
        first = await recv_frame(ws)
        assert first["seq"] == 1
        await send(ws, type="unsubscribe", task_id=task["id"])
        received = [first]
        while (frame := await recv_frame(ws))["type"] != "unsubscribed":
            received.append(frame)  # sent before the unsubscribe was read
        assert frame == {"type": "unsubscribed", "task_id": task["id"]}
        assert [f["seq"] for f in received] == list(range(1, len(received) + 1))

        timeline = await sse_data(api, task["id"])
        assert len(timeline) > len(received)  # it went on without this client
        await send(ws, type="ping")
        assert await recv_frame(ws) == {"type": "pong"}  # no event and no `end` came
        # unsubscribing what is not subscribed is harmless
        await send(ws, type="unsubscribe", task_id="*")
        assert await recv_frame(ws) == {"type": "unsubscribed", "task_id": "*"}


# --- bad input (the session's stack) -----------------------------------------------------------


BAD_FRAMES: list[str | bytes] = [
    "{nope",
    "[]",
    "42",
    json.dumps({"type": "shout"}),
    json.dumps({"task_id": "*"}),
    json.dumps({"type": "subscribe"}),
    json.dumps({"type": "subscribe", "task_id": "not-a-task-id"}),
    json.dumps({"type": "subscribe", "task_id": "{task}", "after": -1}),
    json.dumps({"type": "subscribe", "task_id": "{task}", "after": "one"}),
    json.dumps({"type": "subscribe", "task_id": "*", "after": 3}),
    json.dumps({"type": "unsubscribe", "task_id": 7}),
    b'{"type": "ping"}',  # binary
]


async def test_bad_frames_get_400_and_leave_this_and_other_connections_usable(
    api: PublicApi,
) -> None:
    task = await api.submit("Watched through the barrage.\n/steps 6\n/sleep 0.3")
    async with api.live() as bystander, api.live() as ws:
        await send(bystander, type="subscribe", task_id=task["id"])
        watching = asyncio.create_task(follow_rest(bystander, task["id"]))

        await send(ws, type="subscribe", task_id=task["id"])
        assert await next_control(ws) == {"type": "subscribed", "task_id": task["id"]}
        for bad in BAD_FRAMES:
            await ws.send(bad.replace("{task}", task["id"]) if isinstance(bad, str) else bad)
            error = await next_control(ws)
            assert error["type"] == "error", (bad, error)
            assert error["status"] == 400, (bad, error)
            assert error["title"], (bad, error)
            assert error["detail"], (bad, error)
        await send(ws, type="subscribe", task_id=task["id"])  # already subscribed
        conflict = await next_control(ws)
        assert (conflict["type"], conflict["status"], conflict["task_id"]) == (
            "error",
            409,
            task["id"],
        )
        await send(ws, type="ping", padding="x" * 16_000)  # just under the limit: fine
        assert await next_control(ws) == {"type": "pong"}

        await send(ws, type="ping", padding="x" * 20_000)  # over RELAY_WS_MAX_MESSAGE_BYTES
        closed = await events_until_closed(ws, [])
        assert closed.rcvd is not None
        assert closed.rcvd.code == 1009

        events = await asyncio.wait_for(watching, 60)
    assert_whole_timeline(events)
    assert parsed(events) == parsed(await sse_data(api, task["id"]))


async def follow_rest(ws: ClientConnection, task_id: str) -> list[str]:
    """After a subscribe was sent: the `subscribed` frame, then the events up to `end`."""
    assert await recv_frame(ws) == {"type": "subscribed", "task_id": task_id}
    events = []
    while (frame := json.loads(text := await recv_text(ws, within=60)))["type"] != "end":
        assert frame["type"] not in CONTROL, frame
        events.append(text)
    return events


async def test_a_burst_of_subscribes_gets_one_subscription_and_149_conflicts(
    api: PublicApi,
) -> None:
    task = await api.submit("Held open by its think time.\n/steps 2\n/sleep 20")
    async with api.live() as ws:
        for _ in range(150):
            await send(ws, type="subscribe", task_id=task["id"])
        controls = [await next_control(ws, within=60) for _ in range(150)]
        assert controls[0] == {"type": "subscribed", "task_id": task["id"]}
        for conflict in controls[1:]:
            assert (conflict["type"], conflict["status"]) == ("error", 409), conflict
            assert conflict["task_id"] == task["id"]
        # still usable: the subscription ends as the task does
        assert (await api.http.post(f"/v1/tasks/{task['id']}/cancel")).status_code == 202
        timeline = await sse_data(api, task["id"])
        assert json.loads(timeline[-1])["type"] == "task.cancelled"
        await send(ws, type="ping")
        assert await next_control(ws) == {"type": "end", "task_id": task["id"]}
        assert await recv_frame(ws) == {"type": "pong"}


# --- limits, pings and slow clients (the module's stack) ---------------------------------------


async def test_the_server_pings_and_closes_a_peer_that_stops_answering_1011(
    live_api: PublicApi,
) -> None:
    answering = await RawClient.open(live_api)
    silent = await RawClient.open(live_api, answer=False)
    try:
        # the peer that answers is pinged every interval and stays open ...
        watching = asyncio.create_task(
            answering.read_until(lambda: len(answering.pings) >= 2, within=4 * PING_INTERVAL + 10)
        )
        # ... the silent one is pinged after an interval and closed when its answer is overdue
        code = await silent.read_to_the_end(within=4 * PING_INTERVAL + 10)
        await watching
        assert code == 1011
        assert silent.pings
        assert silent.closed_at is not None
        unanswered_for = silent.closed_at - silent.pings[0]
        assert 0.5 * PING_INTERVAL <= unanswered_for <= 2 * PING_INTERVAL + 2
        assert not answering.eof
        gap = answering.pings[1] - answering.pings[0]
        assert 0.5 * PING_INTERVAL <= gap <= 1.5 * PING_INTERVAL + 1
        await answering.send(type="ping")
        await answering.read_until(lambda: bool(answering.texts), within=10)
        assert json.loads(answering.texts[0]) == {"type": "pong"}
    finally:
        answering.close()
        silent.close()


async def test_subscriptions_past_the_cap_get_429_and_the_connection_stays_usable(
    live_api: PublicApi,
) -> None:
    # tasks that stay unfinished while the test runs (each subscription to one stays open)
    tasks = await asyncio.gather(
        *(live_api.submit(f"Held {n}.\n/steps 1\n/sleep 30") for n in range(5))
    )
    ids = [t["id"] for t in tasks]
    try:
        async with live_api.live() as ws:
            for key in ["*", ids[0], ids[1]]:  # `*` counts as one
                await send(ws, type="subscribe", task_id=key)
                assert await next_control(ws) == {"type": "subscribed", "task_id": key}
            for n in range(150):
                await send(ws, type="subscribe", task_id=ids[2 + n % 3])
            for n in range(150):
                refused = await next_control(ws)
                assert (refused["type"], refused["status"]) == ("error", 429), refused
                assert refused["task_id"] == ids[2 + n % 3]
            await send(ws, type="subscribe", task_id=ids[0])
            conflict = await next_control(ws)
            assert (conflict["type"], conflict["status"]) == ("error", 409)
            # room again after an unsubscribe
            await send(ws, type="unsubscribe", task_id=ids[1])
            assert await next_control(ws) == {"type": "unsubscribed", "task_id": ids[1]}
            await send(ws, type="subscribe", task_id=ids[4])
            assert await next_control(ws) == {"type": "subscribed", "task_id": ids[4]}
            await send(ws, type="ping")
            assert await next_control(ws) == {"type": "pong"}
    finally:
        for task_id in ids:
            await live_api.http.post(f"/v1/tasks/{task_id}/cancel")


async def test_an_expired_ticket_is_refused(
    live_anonymous: PublicApi, live_api: PublicApi, early_tickets: tuple[float, list[str]]
) -> None:
    issued, (for_ws, for_sse) = early_tickets
    task = await live_api.submit("/steps 1")
    await asyncio.sleep(max(0.0, issued + TICKET_TTL + 1 - time.monotonic()))
    await assert_refused(live_anonymous.live(ticket=for_ws))
    expired = await live_anonymous.http.get(
        f"/v1/tasks/{task['id']}/events", params={"ticket": for_sse}
    )
    assert expired.status_code == 401


async def test_a_client_that_stops_reading_is_closed_1013_while_others_keep_receiving(
    live_api: PublicApi,
) -> None:
    # A small receive buffer and segment size keep what the kernels hold for the slow client
    # small (about 120 kB here), so that its send queue fills with a few large events.
    slow = await RawClient.open(live_api, rcvbuf=2048, maxseg=536)
    try:
        async with live_api.live() as normal:
            await send(normal, type="subscribe", task_id="*")
            assert await recv_frame(normal) == {"type": "subscribed", "task_id": "*"}
            await slow.send(type="subscribe", task_id="*")
            await slow.read_until(lambda: bool(slow.texts), within=10)
            # Stop reading right after answering a ping: the server's keepalive then leaves it
            # alone for about two intervals; it must be found too slow (1013) before that.
            pings = len(slow.pings)
            await slow.read_until(lambda: len(slow.pings) > pings, within=2 * PING_INTERVAL)
            stopped = time.monotonic()

            padding = "x" * 30_000  # task.submitted carries the prompt: ~30 kB frames
            tasks = await asyncio.gather(
                *(live_api.submit(f"Flood {n} {padding}\n/steps 3") for n in range(12))
            )
            # Read the slow client again, to the end, once far more than the kernels hold plus
            # the send queue has gone its way too -- at the latest before its keepalive runs out.
            enough = asyncio.Event()
            resumed: list[float] = []

            async def read_again() -> int | None:
                left = 1.5 * PING_INTERVAL - (time.monotonic() - stopped)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(enough.wait(), max(0.0, left))
                    # the full queue waits SEND_TIMEOUT for room before it gives up
                    left = 1.5 * PING_INTERVAL - (time.monotonic() - stopped)
                    await asyncio.sleep(max(0.0, min(SEND_TIMEOUT + 1.5, left)))
                resumed.append(time.monotonic() - stopped)
                return await slow.read_to_the_end(within=30)

            reading_again = asyncio.create_task(read_again())
            received: dict[str, list[str]] = {t["id"]: [] for t in tasks}
            sent_bytes = 0
            frames_past_180k = 0
            while not all(r and json.loads(r[-1])["type"] in TERMINAL for r in received.values()):
                text = await recv_text(normal, within=60)
                frame = json.loads(text)
                assert frame["type"] not in CONTROL, frame
                sent_bytes += len(text)
                frames_past_180k += sent_bytes > 180_000
                if frames_past_180k > 2 * SEND_QUEUE:
                    enough.set()
                if frame["task_id"] in received:  # not a task of an earlier test
                    received[frame["task_id"]].append(text)
            code = await reading_again
    finally:
        slow.close()

    assert code == 1013, (
        f"the slow client was closed with {code}; it was read again {resumed[0]:.1f} s after it"
        f" stopped ({'after' if enough.is_set() else 'before'} enough was sent its way)"
    )
    for task_id, texts in received.items():
        assert_whole_timeline(texts)
        assert parsed(texts) == parsed(await sse_data(live_api, task_id))
    got = [json.loads(t) for t in slow.texts[1:]]  # after `subscribed`
    assert all(f["type"] not in CONTROL for f in got), got
    got = [f for f in got if f["task_id"] in received]
    assert len(got) < sum(len(r) for r in received.values())  # cut off
    for task_id in received:  # what it did get is each timeline's beginning
        mine = [f["seq"] for f in got if f["task_id"] == task_id]
        assert mine == list(range(1, len(mine) + 1))


async def test_a_history_longer_than_the_send_queue_reaches_a_client_that_reads(
    live_api: PublicApi,
) -> None:
    """The send queue limits a client that does not read; one that reads must get a task's
    whole history, however long (here more events than RELAY_WS_SEND_QUEUE_FRAMES)."""
    task = await live_api.submit(f"/steps {SEND_QUEUE + 5}")
    timeline = await sse_data(live_api, task["id"])
    assert len(timeline) > SEND_QUEUE
    async with live_api.live() as ws:
        assert parsed(await follow(ws, task["id"])) == parsed(timeline)


# --- restarts (the module's stack; last, since they take services away) ------------------------


async def test_a_notifier_restart_closes_1012_and_after_resumes_without_loss(
    live_stack: RunningStack, live_api: PublicApi
) -> None:
    task = await live_api.submit("Across a notifier restart.\n/steps 4\n/sleep 0.5")
    seen: list[str] = []
    async with live_api.live() as ws:
        await send(ws, type="subscribe", task_id=task["id"])
        assert await recv_frame(ws) == {"type": "subscribed", "task_id": task["id"]}
        while len(seen) < 3:
            seen.append(await recv_text(ws))
        old = live_stack.kill("notifier")
        closed = await events_until_closed(ws, seen)
    assert closed.rcvd is not None
    assert closed.rcvd.code == 1012
    await asyncio.to_thread(live_stack.wait_restarted, "notifier", old)

    async with live_api.live() as ws:
        rest = await follow(ws, task["id"], after=seqs(seen)[-1])
    assert_whole_timeline(seen + rest)
    assert parsed(seen + rest) == parsed(await sse_data(live_api, task["id"]))


async def test_sse_followers_sharing_a_stream_resume_across_a_notifier_restart_without_loss(
    live_stack: RunningStack, live_api: PublicApi
) -> None:
    """The gateway's one notifier stream for a task's followers (ADR 0024) ends with the
    notifier; every follower's response ends with it, and each resumes with Last-Event-ID."""
    task = await live_api.submit("Across a notifier restart, on SSE.\n/steps 4\n/sleep 0.5")
    third = asyncio.Event()

    def seen(event: TimelineEvent) -> None:
        if event.id >= 3:
            third.set()

    following = [
        asyncio.create_task(live_api.timeline(task["id"], on_event=seen)) for _ in range(3)
    ]
    await asyncio.wait_for(third.wait(), timeout=30)
    old = live_stack.kill("notifier")
    cut_short = await asyncio.gather(*following)
    await asyncio.to_thread(live_stack.wait_restarted, "notifier", old)

    for before in cut_short:
        assert before[-1].event not in TERMINAL
        whole = before + await live_api.timeline(task["id"], last_event_id=before[-1].id)
        assert [e.id for e in whole] == list(range(1, len(whole) + 1))
        assert whole[-1].event == "task.succeeded"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_a_gateway_restart_drops_the_connection_and_after_resumes_without_loss(
    live_stack: RunningStack, live_api: PublicApi, sig: signal.Signals
) -> None:
    task = await live_api.submit("Across a gateway restart.\n/steps 4\n/sleep 0.5")
    seen: list[str] = []
    async with live_api.live() as ws:
        await send(ws, type="subscribe", task_id=task["id"])
        assert await recv_frame(ws) == {"type": "subscribed", "task_id": task["id"]}
        while len(seen) < 3:
            seen.append(await recv_text(ws))
        old = live_stack.kill("gateway", sig)
        closed = await events_until_closed(ws, seen)
    if sig is signal.SIGTERM:  # a server that stops says so: service restart
        assert closed.rcvd is not None
        assert closed.rcvd.code == 1012
    await asyncio.to_thread(live_stack.wait_restarted, "gateway", old)

    async with live_api.live() as ws:
        rest = await follow(ws, task["id"], after=seqs(seen)[-1])
    assert_whole_timeline(seen + rest)
    assert parsed(seen + rest) == parsed(await sse_data(live_api, task["id"]))
