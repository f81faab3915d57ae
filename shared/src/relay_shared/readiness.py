"""Readiness checks: what ``GET /readyz`` reports about each dependency of a service.

Each check answers ``ok`` and a short detail (never a secret). A failing *critical* check makes
the service ``degraded`` (503); a non-critical one (the outbox lag) is reported without
changing the status, because its cause (the AWS endpoint) has a check of its own and the
service stays safe to use while it lasts.

The AWS check makes no calls of its own: every AWS client a service opens through the runtime
reports the outcome of its calls here (the consumer's receives, the relay's PutEvents, S3
uploads), and the check reads the latest outcome per AWS service.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from relay_shared.aws import is_outage
from relay_shared.db import Database
from relay_shared.outbox import outbox_lag

Status = Literal["starting", "ready", "degraded", "stopping", "failed"]
DETAIL_CHARS = 200


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str
    data: Mapping[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail, **self.data}


Probe = Callable[[], Awaitable[CheckResult]]


@dataclass(frozen=True)
class Check:
    name: str
    probe: Probe
    critical: bool = True


@dataclass(frozen=True)
class Readiness:
    status: Status
    checks: Mapping[str, CheckResult]

    @property
    def ready(self) -> bool:
        return self.status == "ready"

    def body(self, service: str) -> dict[str, Any]:
        return {
            "status": self.status,
            "service": service,
            "checks": {name: result.body() for name, result in self.checks.items()},
        }


def describe(exc: BaseException) -> str:
    """An error in one short line: its type and the first line of its message."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 1] + "…"


def database_check(database: Database) -> Check:
    async def probe() -> CheckResult:
        started = time.monotonic()
        await database.ping()
        return CheckResult(True, f"SELECT 1 in {(time.monotonic() - started) * 1000:.0f} ms")

    return Check("database", probe)


class Pingable(Protocol):
    def ping(self) -> Awaitable[Any]: ...


def redis_check(redis: Pingable, *, critical: bool = True) -> Check:
    async def probe() -> CheckResult:
        started = time.monotonic()
        await redis.ping()
        return CheckResult(True, f"PING in {(time.monotonic() - started) * 1000:.0f} ms")

    return Check("redis", probe, critical=critical)


def outbox_check(database: Database, *, warn_after_seconds: float) -> Check:
    """Rows waiting to be published and the age of the oldest; not ok past the threshold."""

    async def probe() -> CheckResult:
        async with database.transaction() as conn:
            lag = await outbox_lag(conn)
        oldest = lag.oldest_seconds
        detail = (
            "nothing unpublished"
            if oldest is None
            else f"{lag.unpublished} unpublished, oldest {oldest:.1f}s"
        )
        return CheckResult(
            oldest is None or oldest <= warn_after_seconds,
            detail,
            {"unpublished": lag.unpublished, "oldest_unpublished_seconds": oldest},
        )

    return Check("outbox", probe, critical=False)


# aiobotocore methods that never reach the endpoint (signing, paginators, closing)
_LOCAL_METHODS = frozenset(
    {
        "generate_presigned_url",
        "generate_presigned_post",
        "get_paginator",
        "get_waiter",
        "can_paginate",
        "close",
    }
)


@dataclass
class _Outcome:
    operation: str
    at: float
    error: str | None = None


class AwsCalls:
    """The latest outcome of this process's calls to each AWS service."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._latest: dict[str, _Outcome] = {}

    def succeeded(self, service: str, operation: str) -> None:
        self._latest[service] = _Outcome(operation, self._clock())

    def failed(self, service: str, operation: str, exc: BaseException) -> None:
        self._latest[service] = _Outcome(operation, self._clock(), describe(exc))

    def observe(self, client: Any, service: str) -> Any:
        """``client``, reporting the outcome of each call here."""
        return _ObservedClient(client, service, self)

    def check(self) -> Check:
        async def probe() -> CheckResult:
            now = self._clock()
            failing = {s: o for s, o in self._latest.items() if o.error is not None}
            if not self._latest:
                return CheckResult(True, "no calls yet")
            parts = [
                f"{service}: {o.operation} failed {now - o.at:.0f}s ago: {o.error}"
                if o.error
                else f"{service}: {o.operation} ok {now - o.at:.0f}s ago"
                for service, o in sorted(self._latest.items())
            ]
            return CheckResult(not failing, "; ".join(parts))

        return Check("aws", probe)


class _ObservedClient:
    """Delegates everything to the aiobotocore client; API calls report their outcome."""

    def __init__(self, client: Any, service: str, calls: AwsCalls) -> None:
        self._client = client
        self._service = service
        self._calls = calls

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name in _LOCAL_METHODS or not inspect.iscoroutinefunction(attribute):
            return attribute

        async def call(*args: Any, **kwargs: Any) -> Any:
            try:
                result = await attribute(*args, **kwargs)
            except Exception as exc:
                if is_outage(exc):
                    self._calls.failed(self._service, name, exc)
                else:  # the endpoint answered; the request itself was refused
                    self._calls.succeeded(self._service, name)
                raise
            self._calls.succeeded(self._service, name)
            return result

        return call
