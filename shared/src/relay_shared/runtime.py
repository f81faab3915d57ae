"""A service's life beside its HTTP server: start-up that waits for its dependencies, readiness,
and a graceful stop. Every composition root builds its service inside one ``ServiceRuntime``.

The HTTP server answers at once (``/healthz``); start-up work (migrations, pools, queue URLs,
credentials fetched over the network, consumers, relays) runs in the background. A dependency
that cannot be reached (PostgreSQL, Redis, the AWS endpoint) is waited for with capped,
jittered backoff, logging what start-up waits for, instead of ending the process: under a
supervisor or ECS that would be a crash loop. Anything else that fails start-up (a missing
secret, a bug) is fatal: it is logged and the process exits non-zero. Settings errors never get
this far: they stop ``create_app`` before anything serves.

Until start-up is done the service's own routes answer 503 (see http.py); ``/readyz`` says
``starting``, then ``ready``, or ``degraded`` while a dependency check fails.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import psycopg
from botocore.exceptions import ClientError
from pydantic import SecretStr
from redis.asyncio import Redis

from relay_shared.aws import NO_ANSWER, aws_client, is_unreachable, queue_url
from relay_shared.backoff import Backoff
from relay_shared.consumer import Defer, MessageHandler, ReceivedMessage, SqsConsumer
from relay_shared.db import Database, service_database
from relay_shared.housekeeping import Housekeeping
from relay_shared.loops import Loop, Periodic
from relay_shared.migrations import migrate
from relay_shared.outbox import OutboxRelay
from relay_shared.problems import DEPENDENCY_ERRORS, DependencyUnavailable
from relay_shared.publisher import EventBridgePublisher
from relay_shared.readiness import (
    AwsCalls,
    Check,
    CheckResult,
    Readiness,
    Status,
    database_check,
    describe,
    outbox_check,
    redis_check,
)
from relay_shared.settings import ServiceSettings

__all__ = ["DependencyUnavailable", "Loop", "ServiceRuntime", "Start", "is_unavailable"]

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)

T = TypeVar("T")
Phase = Literal["starting", "ready", "stopping", "failed"]
Start = Callable[["FastAPI", "ServiceRuntime"], AbstractAsyncContextManager[None]]


# What "cannot be reached for now" looks like from each client library. ClientError is here
# because during start-up a missing queue usually means the topology is still being created
# (a restarted emulator, a deploy in progress); waiting and saying so beats a crash loop.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    DependencyUnavailable,
    psycopg.OperationalError,  # refused, reset, PoolTimeout
    psycopg.InterfaceError,  # a connection closed under us
    *NO_ANSWER,  # sockets refused or reset, timeouts; botocore's connection errors
    ClientError,
)


def is_unavailable(exc: BaseException, also: tuple[type[BaseException], ...] = ()) -> bool:
    return isinstance(exc, _UNAVAILABLE + also)


def deferring_outages(handler: MessageHandler, delay_seconds: int) -> MessageHandler:
    """``handler``, with a failure caused by a dependency outage (PostgreSQL or an AWS endpoint
    unreachable) turned into a ``Defer``: the message comes back after ``delay_seconds``
    instead of after the consumer's short backoff, so an outage of a minute or two does not
    walk it through every receive into the DLQ. The message is not at fault."""

    async def handle(message: ReceivedMessage) -> None:
        try:
            await handler(message)
        except Exception as exc:
            if isinstance(exc, tuple(DEPENDENCY_ERRORS)) or is_unreachable(exc):
                raise Defer(delay_seconds, f"a dependency is unavailable: {describe(exc)}") from exc
            raise

    return handle


class ServiceRuntime:
    def __init__(
        self,
        settings: ServiceSettings,
        start: Start,
        *,
        backoff: Backoff | None = None,
    ) -> None:
        self.settings = settings
        self.service = settings.service_name
        self.phase: Phase = "starting"
        self.waiting_for: str | None = None  # what start-up is waiting for right now
        self.last_error: str | None = None  # why the last attempt at it failed
        self.failure: BaseException | None = None  # what made start-up fail for good
        # Set by relay_shared.http.serve: a real process stops its server when start-up fails
        # (and exits with status 1); in tests the failure is raised by wait_ready instead.
        self.on_failure: Callable[[], None] | None = None
        # Also set by serve: what a real process does once start-up is done (see http.py).
        self.on_ready: Callable[[], None] | None = None
        self.aws = AwsCalls()
        self._start = start
        self._backoff = backoff or Backoff(maximum=settings.startup_max_backoff_seconds)
        self._retry_at: float | None = None
        self._checks: dict[str, Check] = {}
        self._resources = AsyncExitStack()
        self._settled = asyncio.Event()  # ready or failed
        self._stopping = asyncio.Event()
        self._reported: Status | None = None

    # --- start-up steps: what a composition root's start function calls --------------------

    async def until_available(
        self,
        dependency: str,
        step: Callable[[], Awaitable[T]],
        *,
        also: tuple[type[BaseException], ...] = (),
    ) -> T:
        """``await step()`` until it succeeds, waiting while ``dependency`` is unreachable
        (errors from ``is_unavailable``, plus ``also``); any other error is raised."""
        failures = 0
        while True:
            self.waiting_for = dependency
            try:
                result = await step()
            except Exception as exc:
                if not is_unavailable(exc, also):
                    raise
                failures += 1
                delay = self._backoff.delay(failures)
                self.last_error = describe(exc)
                self._retry_at = time.monotonic() + delay
                log.warning(
                    "start-up: waiting for %s (%s); trying again in %.1fs",
                    dependency,
                    self.last_error,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            if failures:
                log.info("start-up: %s is available after %d attempts", dependency, failures + 1)
            self.waiting_for = self.last_error = self._retry_at = None
            return result

    async def database(self, *migrations: Path) -> Database:
        """The service's database: migrated (waiting for PostgreSQL), pooled, checked by
        /readyz, closed when the service stops."""
        await self.until_available("PostgreSQL", lambda: migrate(self.settings, *migrations))
        database = service_database(self.settings)
        await database.open()
        self._resources.push_async_callback(database.close)
        self.add_check(database_check(database))
        return database

    async def aws_client(self, service: str, **options: Any) -> Any:
        """An AWS client whose calls feed the /readyz ``aws`` check; closed on stop."""
        client = await self._resources.enter_async_context(
            aws_client(self.settings, service, **options)
        )
        if "aws" not in self._checks:
            self.add_check(self.aws.check())
        return self.aws.observe(client, service)

    async def consumer(
        self,
        sqs: Any,
        handler: MessageHandler,
        *,
        queue_name: str | None = None,
        concurrency: int | None = None,
    ) -> SqsConsumer:
        """A consumer of the service's queue (or ``queue_name``), once its URL is known."""
        name = queue_name or self.settings.queue_name
        url = await self.until_available(f"the SQS queue {name}", lambda: queue_url(sqs, name))
        settings = self.settings
        return SqsConsumer(
            sqs,
            url,
            deferring_outages(handler, settings.consumer_outage_delay_seconds),
            concurrency=concurrency or settings.consumer_concurrency,
            wait_seconds=settings.consumer_wait_seconds,
            visibility_timeout=settings.consumer_visibility_timeout,
            grace_seconds=settings.shutdown_grace_seconds,
            max_deferrals=settings.consumer_max_deferrals,
            delete_linger_seconds=settings.consumer_delete_linger_seconds,
            name=name,
        )

    def redis(self, url: SecretStr, *, critical: bool = True) -> Redis:
        """A Redis client (connections open on first use, so start-up does not wait for it),
        checked by /readyz (``critical``: a failing PING makes the service degraded), closed
        when the service stops."""
        redis = Redis.from_url(
            url.get_secret_value(),
            socket_connect_timeout=5,
            socket_keepalive=True,
            health_check_interval=30,  # notices a silently dead connection
        )
        self.on_stop(redis.aclose)
        self.add_check(redis_check(redis, critical=critical))
        return redis

    def outbox_relay(self, database: Database, events: Any) -> OutboxRelay:
        """The outbox relay; /readyz reports the outbox lag."""
        self.add_check(
            outbox_check(database, warn_after_seconds=self.settings.outbox_lag_warn_seconds)
        )
        return OutboxRelay(
            database,
            EventBridgePublisher(events, self.settings.event_bus_name),
            schema=self.settings.db_schema,
            poll_interval=self.settings.outbox_poll_interval,
        )

    def housekeeping(self, database: Database, *, outbox: bool, inbox: bool) -> Loop:
        """Cleanup of the kit tables this service has (``outbox``, ``inbox``) and the outbox
        lag watch, every ``housekeeping_interval_seconds``."""
        settings = self.settings
        sweeper = Housekeeping(
            database,
            outbox_retention=timedelta(hours=settings.outbox_retention_hours) if outbox else None,
            inbox_retention=timedelta(days=settings.inbox_retention_days) if inbox else None,
            lag_warn_seconds=settings.outbox_lag_warn_seconds,
        )
        return Periodic(
            "housekeeping", sweeper.sweep, interval_seconds=settings.housekeeping_interval_seconds
        )

    async def enter(self, context: AbstractAsyncContextManager[T]) -> T:
        """Enter ``context`` now; it is exited when the service stops (after its loops)."""
        return await self._resources.enter_async_context(context)

    def add_check(self, check: Check) -> None:
        self._checks[check.name] = check

    def on_stop(self, callback: Callable[[], Awaitable[object]]) -> None:
        """Awaited when the service stops, after its loops (e.g. closing a client)."""
        self._resources.push_async_callback(callback)

    # --- life ------------------------------------------------------------------------------

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        """The app's lifespan: serving starts at once; start-up runs beside it."""
        task = asyncio.create_task(self._run(app), name=f"{self.service} start-up")
        try:
            yield
        finally:
            self._stopping.set()
            if self.phase == "starting":
                task.cancel()  # interrupts whatever start-up waits for
            elif self.phase == "ready":
                self.phase = "stopping"
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self, app: FastAPI) -> None:
        try:
            async with self._resources, self._start(app, self):
                if self.on_ready is not None:
                    self.on_ready()
                self.phase = "ready"
                self._settled.set()
                log.info("%s is ready", self.service)
                await self._stopping.wait()
        except asyncio.CancelledError:
            log.info("%s stopped before start-up finished", self.service)
            raise
        except Exception as exc:
            if self.phase in {"ready", "stopping"}:
                log.exception("%s: error while stopping", self.service)
                return
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        self.phase = "failed"
        self.failure = exc
        self._settled.set()
        log.critical("%s: start-up failed: %s", self.service, describe(exc), exc_info=exc)
        if self.on_failure is not None:
            self.on_failure()

    async def wait_ready(self) -> None:
        """Until start-up is done; raises what made it fail (tests, tools). Bound it with
        ``asyncio.timeout``."""
        await self._settled.wait()
        if self.failure is not None:
            raise self.failure

    # --- what the HTTP side reports --------------------------------------------------------

    def starting_detail(self) -> str:
        if self.waiting_for is None:
            return "starting"
        if self.last_error is None:
            return f"waiting for {self.waiting_for}"
        return f"waiting for {self.waiting_for} ({self.last_error})"

    def retry_after_seconds(self) -> int:
        """What a client told 'not yet' should wait: until the next start-up attempt."""
        if self._retry_at is None:
            return 1
        return max(1, min(30, math.ceil(self._retry_at - time.monotonic())))

    async def readiness(self) -> Readiness:
        if self.phase == "starting":
            report = Readiness("starting", {"startup": CheckResult(False, self.starting_detail())})
        elif self.phase == "failed":
            detail = f"failed: {describe(self.failure)}" if self.failure else "failed"
            report = Readiness("failed", {"startup": CheckResult(False, detail)})
        else:
            names = list(self._checks)
            results = await asyncio.gather(*(self._probe(self._checks[n]) for n in names))
            checks = dict(zip(names, results, strict=True))
            failing = [n for n in names if self._checks[n].critical and not checks[n].ok]
            status: Status = (
                "stopping" if self.phase == "stopping" else "degraded" if failing else "ready"
            )
            report = Readiness(status, checks)
        self._log_change(report)
        return report

    async def _probe(self, check: Check) -> CheckResult:
        timeout = self.settings.readiness_timeout_seconds
        try:
            return await asyncio.wait_for(check.probe(), timeout)
        except TimeoutError:
            return CheckResult(False, f"no answer within {timeout:g}s")
        except Exception as exc:
            return CheckResult(False, describe(exc))

    def _log_change(self, report: Readiness) -> None:
        if report.status == self._reported:
            return
        previous, self._reported = self._reported, report.status
        if report.status == "degraded":
            failing = {n: r.detail for n, r in report.checks.items() if not r.ok}
            log.warning("%s is degraded: %s", self.service, failing)
        elif report.status == "ready" and previous == "degraded":
            log.info("%s is ready again", self.service)
