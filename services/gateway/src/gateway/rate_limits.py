"""Per-tenant rate limits (DESIGN.md, *Limits and quotas*): the request rate (every ``/v1``
request; a WebSocket or SSE connection counts once, when it opens) and the submit rate
(``POST /v1/tasks``, counted in addition). The tenant's quotas (active tasks, daily spend and
tokens) are kept beside them, with the same overrides, and sent with each submit to the tasks
service, which counts them where the tasks are (ADR 0017).

Each limit is a token bucket: ``per_second`` tokens refill it, up to ``burst``. The buckets live
behind the ``RateLimiter`` port (Redis in production, one script call per request for every
bucket the request takes from; ADR 0017). A tenant's overrides (``relay admin set-limits``) are
read from PostgreSQL at most once per ``overrides_ttl_seconds`` per tenant and process.

If the limiter cannot answer, the request is served anyway (fail open): a warning is logged (at
most once a minute), ``relay.gateway.rate_limit.fail_open`` counts each request served so, and
``/readyz`` shows it in its ``rate_limits`` check. After a failure the limiter is left alone for
``RETRY_AFTER_FAILURE_SECONDS`` so an outage does not add a timeout to every request.

Answers carry the IETF ``RateLimit-Policy`` and ``RateLimit`` fields
(draft-ietf-httpapi-ratelimit-headers-10): a bucket of ``burst`` refilled at ``per_second`` is
advertised as the policy ``q=burst; w=burst/per_second`` (the seconds an empty bucket takes to
fill), ``r`` is what is left of it and ``t`` the seconds until it is full again.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from opentelemetry import metrics

from relay_shared.problems import Problem
from relay_shared.readiness import Check, CheckResult, describe

if TYPE_CHECKING:
    from gateway.ports import LimitOverrides, RateLimiter

log = logging.getLogger(__name__)

FAIL_OPEN = metrics.get_meter("relay").create_counter(
    "relay.gateway.rate_limit.fail_open",
    unit="{request}",
    description="Requests served without a rate-limit check because the limiter (Redis) could "
    "not answer.",
)

RETRY_AFTER_FAILURE_SECONDS = 1.0  # how long the limiter is left alone after it failed
WARN_EVERY_SECONDS = 60.0  # at most one fail-open warning per this many seconds

REQUESTS = "requests"
SUBMITS = "submits"
TITLES = {REQUESTS: "Request rate limit exceeded", SUBMITS: "Submit rate limit exceeded"}
WHAT = {REQUESTS: "requests", SUBMITS: "task submissions"}


class LimiterUnavailable(Exception):
    """The rate limiter cannot answer right now (Redis away or too slow)."""


class LimitOverridesUnavailable(Exception):
    """The overrides cannot be read right now (PostgreSQL away)."""


@dataclass(frozen=True)
class Limit:
    """One token bucket: ``per_second`` refill, ``burst`` capacity."""

    name: str
    per_second: float
    burst: int

    @property
    def window_seconds(self) -> int:
        """How long an empty bucket takes to fill: the ``w`` of its policy."""
        return max(1, math.ceil(self.burst / self.per_second))

    def policy(self) -> str:
        return f'"{self.name}";q={self.burst};w={self.window_seconds}'


@dataclass(frozen=True)
class Bucket:
    """One bucket of one tenant, as the limiter is asked to take from it."""

    tenant_id: str
    limit: Limit


@dataclass(frozen=True)
class Verdict:
    """What one bucket said: whether it let the request through, what it has left, seconds
    until it is full again, and (when it refused) seconds until one token is back."""

    allowed: bool
    remaining: int
    reset_seconds: float
    retry_after_seconds: float = 0.0


# How the tasks service is told a tenant's quotas with each submit (it counts and enforces them
# in the transaction that stores the task: tasks/service.py); a quota of 0 is not sent.
QUOTA_HEADERS = {
    "active_tasks": "Relay-Quota-Active-Tasks",
    "daily_spend_usd": "Relay-Quota-Daily-Spend-Usd",
    "daily_tokens": "Relay-Quota-Daily-Tokens",
}


@dataclass(frozen=True)
class TenantLimits:
    """A tenant's two rate limits and three quotas (0: no such quota), as enforced."""

    requests_per_second: float
    requests_burst: int
    submits_per_second: float
    submits_burst: int
    active_tasks: int = 0
    daily_spend_usd: float = 0.0
    daily_tokens: int = 0

    def requests(self) -> Limit:
        return Limit(REQUESTS, self.requests_per_second, self.requests_burst)

    def submits(self) -> Limit:
        return Limit(SUBMITS, self.submits_per_second, self.submits_burst)

    def quota_headers(self) -> dict[str, str]:
        """The quotas to send with a submit, as the tasks service reads them."""
        return {
            header: str(value)
            for name, header in QUOTA_HEADERS.items()
            if (value := getattr(self, name))
        }


@dataclass(frozen=True)
class LimitOverride:
    """What ``relay admin set-limits`` stored for a tenant; unset fields keep the default (a
    quota of 0: none for this tenant)."""

    requests_per_second: float | None = None
    requests_burst: int | None = None
    submits_per_second: float | None = None
    submits_burst: int | None = None
    active_tasks: int | None = None
    daily_spend_usd: float | None = None
    daily_tokens: int | None = None

    def over(self, defaults: TenantLimits) -> TenantLimits:
        given = {name: value for name, value in vars(self).items() if value is not None}
        return replace(defaults, **given)


@dataclass(frozen=True)
class Admission:
    """The outcome for one request: the limits it was counted against and what each said;
    empty when no check was made (limits disabled, or failing open)."""

    limits: tuple[Limit, ...] = ()
    verdicts: tuple[Verdict, ...] = ()

    @property
    def refused_by(self) -> tuple[Limit, Verdict] | None:
        for limit, verdict in zip(self.limits, self.verdicts, strict=True):
            if not verdict.allowed:
                return limit, verdict
        return None

    def headers(self) -> dict[str, str]:
        if not self.limits:
            return {}
        return {
            "RateLimit-Policy": ", ".join(limit.policy() for limit in self.limits),
            "RateLimit": ", ".join(
                f'"{limit.name}";r={max(0, verdict.remaining)};t={_seconds(verdict.reset_seconds)}'
                for limit, verdict in zip(self.limits, self.verdicts, strict=True)
            ),
        }

    def problem(self) -> Problem | None:
        """The 429 for a refused request, or None when it may go on."""
        refused = self.refused_by
        if refused is None:
            return None
        limit, verdict = refused
        retry_after = max(1, math.ceil(verdict.retry_after_seconds))
        return Problem(
            429,
            TITLES.get(limit.name, f"{limit.name} limit exceeded"),
            f"This tenant may make {_rate(limit.per_second)} {WHAT.get(limit.name, limit.name)} "
            f"per second with bursts to {limit.burst}; try again in {retry_after} s.",
            # the RateLimit fields are added to every answer (limits.RateLimitFields)
            headers={"Retry-After": str(retry_after)},
            limit=limit.name,
        )


def _seconds(value: float) -> int:
    return max(0, math.ceil(value - 1e-9))


def _rate(per_second: float) -> str:
    return f"{per_second:g}"


class RateLimits:
    """The gateway's rate-limit use case: which buckets a request takes from, with the tenant's
    overrides (cached), and what to do when the limiter is away."""

    def __init__(
        self,
        limiter: RateLimiter,
        overrides: LimitOverrides,
        defaults: TenantLimits,
        *,
        enabled: bool = True,
        overrides_ttl_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limiter = limiter
        self._overrides = overrides
        self.defaults = defaults
        self.enabled = enabled
        self._ttl = overrides_ttl_seconds
        self._clock = clock
        self._cached: dict[str, tuple[float, TenantLimits]] = {}
        # fail-open state, reported by check()
        self._failing_since: float | None = None
        self._last_error = ""
        self._retry_at = 0.0
        self._warned_at: float | None = None
        self._served_open = 0  # since the last warning
        self._served_open_total = 0

    async def admit(self, tenant_id: str, *, submit: bool = False) -> Admission:
        """Count one request of ``tenant_id`` (and one submit when ``submit``)."""
        if not self.enabled:
            return Admission()
        limits = await self.limits_for(tenant_id)
        chosen = (limits.requests(), limits.submits()) if submit else (limits.requests(),)
        now = self._clock()
        if now < self._retry_at:
            return self._fail_open(now)
        buckets = [Bucket(tenant_id, limit) for limit in chosen]
        try:
            verdicts = await self._limiter.acquire(buckets)
        except LimiterUnavailable as exc:
            self._last_error = describe(exc)
            self._retry_at = now + RETRY_AFTER_FAILURE_SECONDS
            if self._failing_since is None:
                self._failing_since = now
            return self._fail_open(now)
        if self._failing_since is not None:
            log.warning(
                "rate limits enforced again after %.0fs failing open (%d requests unchecked)",
                now - self._failing_since,
                self._served_open_total,
            )
            self._failing_since = self._warned_at = None
            self._served_open = self._served_open_total = 0
        return Admission(chosen, tuple(verdicts))

    def _fail_open(self, now: float) -> Admission:
        FAIL_OPEN.add(1)
        self._served_open += 1
        self._served_open_total += 1
        if self._warned_at is None or now - self._warned_at >= WARN_EVERY_SECONDS:
            log.warning(
                "rate limiter unavailable (%s): serving without rate limits "
                "(%d requests unchecked since the last warning)",
                self._last_error,
                self._served_open,
            )
            self._warned_at = now
            self._served_open = 0
        return Admission()

    async def limits_for(self, tenant_id: str) -> TenantLimits:
        """The defaults with the tenant's overrides, read at most once per TTL."""
        now = self._clock()
        cached = self._cached.get(tenant_id)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        try:
            override = await self._overrides.override_for(tenant_id)
        except LimitOverridesUnavailable as exc:
            # keep what we had (or the defaults) and ask again after the TTL
            log.warning("cannot read the rate-limit overrides of %s: %s", tenant_id, exc)
            limits = cached[1] if cached is not None else self.defaults
        else:
            limits = override.over(self.defaults) if override else self.defaults
        if len(self._cached) > 10_000:  # many tenants: forget them all rather than grow
            self._cached.clear()
        self._cached[tenant_id] = (now, limits)
        return limits

    def check(self) -> Check:
        """``/readyz``'s ``rate_limits`` check: not ok while failing open (never critical:
        the gateway keeps serving)."""

        async def probe() -> CheckResult:
            if not self.enabled:
                return CheckResult(True, "disabled (RELAY_RATE_LIMITS_ENABLED=false)")
            if self._failing_since is None:
                return CheckResult(True, "enforced", {"fail_open": False})
            since = self._clock() - self._failing_since
            return CheckResult(
                False,
                f"failing open for {since:.0f}s: {self._last_error}",
                {"fail_open": True, "unchecked_requests": self._served_open_total},
            )

        return Check("rate_limits", probe, critical=False)
