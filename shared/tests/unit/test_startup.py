"""Start-up in the background: the app answers at once, routes say 503 until the service is
built, dependencies are waited for, anything else fails start-up for good."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import psycopg
import pytest
from asgi_lifespan import LifespanManager
from botocore.exceptions import ClientError, EndpointConnectionError
from fastapi import FastAPI
from psycopg_pool import PoolTimeout

from relay_devkit.testing import eventually, wait_ready
from relay_shared.backoff import Backoff
from relay_shared.consumer import Defer, ReceivedMessage
from relay_shared.http import collect_young_less_often, create_service_app
from relay_shared.readiness import AwsCalls, Check, CheckResult
from relay_shared.runtime import ServiceRuntime, deferring_outages
from relay_shared.settings import ServiceSettings

pytestmark = pytest.mark.timeout(30)


class Gate:
    """A dependency the test opens: until then every attempt fails like a refused connection."""

    def __init__(self, error: Exception | None = None) -> None:
        self.open = asyncio.Event()
        self.attempts = 0
        self._error = error or psycopg.OperationalError("connection refused")

    async def attempt(self) -> str:
        self.attempts += 1
        if not self.open.is_set():
            raise self._error
        return "connected"


def _app(
    start_work: Callable[[ServiceRuntime], Any],
    *,
    checks: tuple[Check, ...] = (),
    **overrides: Any,
) -> FastAPI:
    @asynccontextmanager
    async def start(app: FastAPI, runtime: ServiceRuntime) -> AsyncIterator[None]:
        app.state.built = await start_work(runtime)
        for check in checks:
            runtime.add_check(check)
        yield

    settings = ServiceSettings(service_name="tasks", startup_max_backoff_seconds=0.05, **overrides)
    app = create_service_app(settings, start=start)

    @app.get("/things")
    async def things() -> dict[str, str]:
        return {"built": app.state.built}

    @app.get("/database-down")
    async def database_down() -> None:
        raise PoolTimeout("couldn't get a connection after 5.00 sec")

    return app


@asynccontextmanager
async def _client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(manager.app), base_url="http://t") as c,
    ):
        yield c


async def test_routes_answer_503_until_the_dependency_comes_then_the_service_works() -> None:
    postgres = Gate()
    app = _app(lambda runtime: runtime.until_available("PostgreSQL", postgres.attempt))
    async with _client(app) as client:
        assert (await client.get("/healthz")).status_code == 200
        waiting = await client.get("/things")
        assert waiting.status_code == 503
        assert waiting.headers["content-type"] == "application/problem+json"
        assert 1 <= int(waiting.headers["retry-after"]) <= 30
        assert waiting.json()["detail"].startswith("Service starting: waiting for PostgreSQL")
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["status"] == "starting"
        assert "PostgreSQL" in ready.json()["checks"]["startup"]["detail"]

        await _until(lambda: postgres.attempts >= 3)  # retried, not given up
        postgres.open.set()
        await wait_ready(app)

        assert (await client.get("/things")).json() == {"built": "connected"}
        body = (await client.get("/readyz")).json()
        assert body == {"status": "ready", "service": "tasks", "checks": {}}


async def test_a_failure_that_is_not_an_outage_fails_start_up_for_good() -> None:
    async def misconfigured(runtime: ServiceRuntime) -> None:
        raise RuntimeError("RELAY_SOMETHING names no such secret")

    app = _app(misconfigured)
    async with _client(app) as client:
        with pytest.raises(RuntimeError, match="no such secret"):
            await wait_ready(app)
        assert app.state.runtime.phase == "failed"
        assert (await client.get("/healthz")).status_code == 200
        report = await client.get("/readyz")
        assert (report.status_code, report.json()["status"]) == (503, "failed")
        assert (await client.get("/things")).status_code == 503


async def test_the_ready_hook_runs_once_the_service_is_built_before_its_routes_serve() -> None:
    """``serve`` freezes the start-up heap there (http.freeze_heap): everything start-up made
    must exist by then, and no request may be in flight while the collector walks it."""
    seen: list[tuple[str, object]] = []
    app = _app(lambda runtime: asyncio.sleep(0.05, result="connected"))
    runtime: ServiceRuntime = app.state.runtime
    runtime.on_ready = lambda: seen.append((runtime.phase, getattr(app.state, "built", None)))
    async with _client(app) as client:
        await wait_ready(app)
        assert (await client.get("/things")).json() == {"built": "connected"}
    assert seen == [("starting", "connected")]


@pytest.fixture
def collector_thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    yield before
    gc.set_threshold(*before)


def test_young_collections_come_after_the_set_allocations_and_older_ones_as_before(
    collector_thresholds: tuple[int, int, int],
) -> None:
    collect_young_less_often(10_000)
    assert gc.get_threshold() == (10_000, *collector_thresholds[1:])
    collect_young_less_often(0)  # RELAY_GC_YOUNG_THRESHOLD=0: left as it is
    assert gc.get_threshold() == (10_000, *collector_thresholds[1:])


async def test_stopping_while_waiting_for_a_dependency_ends_start_up_promptly() -> None:
    never = Gate()
    app = _app(lambda runtime: runtime.until_available("PostgreSQL", never.attempt))
    async with asyncio.timeout(5), _client(app):
        await _until(lambda: never.attempts >= 1)
    assert app.state.runtime.phase == "starting"  # it never got there, and did not hang


async def test_a_failing_check_makes_the_service_degraded_until_it_passes() -> None:
    healthy = True

    async def probe() -> CheckResult:
        return CheckResult(healthy, "fine" if healthy else "down")

    async def lagging() -> CheckResult:
        return CheckResult(False, "3 unpublished, oldest 99.0s")

    checks = (Check("database", probe), Check("outbox", lagging, critical=False))
    app = _app(_built, checks=checks)
    async with _client(app) as client:
        await wait_ready(app)
        first = await client.get("/readyz")
        assert (first.status_code, first.json()["status"]) == (200, "ready")
        assert first.json()["checks"]["outbox"] == {
            "ok": False,
            "detail": "3 unpublished, oldest 99.0s",
        }
        healthy = False
        degraded = await client.get("/readyz")
        assert (degraded.status_code, degraded.json()["status"]) == (503, "degraded")
        assert degraded.json()["checks"]["database"] == {"ok": False, "detail": "down"}
        assert (await client.get("/things")).status_code == 200  # routes still try
        healthy = True
        assert (await client.get("/readyz")).status_code == 200


async def test_a_check_that_hangs_counts_as_failing() -> None:
    async def hangs() -> CheckResult:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    app = _app(_built, checks=(Check("database", hangs),), readiness_timeout_seconds=0.1)
    async with _client(app) as client:
        await wait_ready(app)
        report = (await client.get("/readyz")).json()
    assert report["status"] == "degraded"
    assert report["checks"]["database"] == {"ok": False, "detail": "no answer within 0.1s"}


async def test_a_request_during_a_database_outage_gets_503_not_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = _app(_built)
    async with _client(app) as client:
        await wait_ready(app)
        response = await client.get("/database-down")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert response.json()["detail"] == "The database is unavailable right now; try again shortly."
    assert not any(record.exc_info for record in caplog.records)


async def test_a_websocket_is_refused_until_the_service_is_ready() -> None:
    app = _app(lambda runtime: runtime.until_available("PostgreSQL", Gate().attempt))
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": "/v1/ws", "headers": [], "query_string": b""}
    async with LifespanManager(app):
        await app(scope, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1013}]


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    backoff = Backoff(initial=0.5, maximum=30.0)
    delays = [backoff.delay(n) for n in range(1, 12)]
    assert 0.25 <= delays[0] <= 0.5
    assert 2.0 <= delays[3] <= 4.0
    assert all(15.0 <= d <= 30.0 for d in delays[7:])


async def test_the_aws_check_reads_the_latest_outcome_of_each_service() -> None:
    calls = AwsCalls()
    sqs = calls.observe(FakeSqs(), "sqs")
    check = calls.check()
    assert (await check.probe()).ok  # no calls yet

    await sqs.receive_message(QueueUrl="q")
    assert (await check.probe()).ok

    sqs._client.error = EndpointConnectionError(endpoint_url="http://moto")
    with pytest.raises(EndpointConnectionError):
        await sqs.receive_message(QueueUrl="q")
    result = await check.probe()
    assert not result.ok
    assert "receive_message failed" in result.detail

    # an answer that refuses the request still says the endpoint works
    sqs._client.error = ClientError(
        {"Error": {"Code": "ReceiptHandleIsInvalid"}, "ResponseMetadata": {"HTTPStatusCode": 400}},
        "ChangeMessageVisibility",
    )
    with pytest.raises(ClientError):
        await sqs.receive_message(QueueUrl="q")
    assert (await check.probe()).ok

    # a queue that is gone (a restarted emulator) does not
    sqs._client.error = ClientError(
        {
            "Error": {"Code": "AWS.SimpleQueueService.NonExistentQueue"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        "ReceiveMessage",
    )
    with pytest.raises(ClientError):
        await sqs.receive_message(QueueUrl="q")
    assert not (await check.probe()).ok


class FakeSqs:
    error: Exception | None = None

    async def receive_message(self, **_: Any) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        return {"Messages": []}


async def _built(runtime: ServiceRuntime) -> str:
    return "built"


async def _until(condition: Callable[[], bool]) -> None:
    async def check() -> bool:
        return condition()

    await eventually(check, within=5)


@pytest.mark.parametrize(
    "outage",
    [
        PoolTimeout("couldn't get a connection after 5.00 sec"),
        psycopg.OperationalError("server closed the connection unexpectedly"),
        EndpointConnectionError(endpoint_url="http://s3.invalid"),
    ],
)
async def test_a_handler_failing_on_an_outage_defers_its_message_for_longer(
    outage: Exception,
) -> None:
    async def handler(message: ReceivedMessage) -> None:
        raise outage

    with pytest.raises(Defer) as deferred:
        await deferring_outages(handler, 45)(_message())
    assert deferred.value.delay_seconds == 45
    assert deferred.value.__cause__ is outage


async def test_a_handler_failing_for_any_other_reason_fails_as_before() -> None:
    async def handler(message: ReceivedMessage) -> None:
        raise ValueError("a bug, or a poison message")

    with pytest.raises(ValueError, match="poison"):
        await deferring_outages(handler, 45)(_message())


def _message() -> ReceivedMessage:
    return ReceivedMessage("m1", "r1", "{}", 1, {})
