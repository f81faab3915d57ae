"""What the sync and async clients share: settings, the retry policy, turning answers into
models or errors, and where an event stream resumes."""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel
from tenacity import RetryCallState, retry_if_exception, stop_after_attempt

from relay_client.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ChecksumMismatchError,
    RateLimitError,
    ServiceUnavailableError,
    status_error,
)
from relay_client.models import Artifact, TimelineEvent

M = TypeVar("M", bound=BaseModel)

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
# An ordinary call; an event stream waits longer for its next line (the API sends a heartbeat
# every 15 s), and a stream of an artifact's bytes longer still.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
STREAM_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
DEFAULT_MAX_RETRIES = 3
MAX_RETRY_AFTER = 60.0  # a longer Retry-After is not waited out: the error is raised
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
USER_AGENT = "relay-client-python/0.1.0"


def settings(base_url: str | None, api_key: str | None) -> tuple[str, str]:
    """The base URL and key, from the arguments or ``RELAY_URL`` / ``RELAY_API_KEY``."""
    url = base_url or os.environ.get("RELAY_URL") or DEFAULT_BASE_URL
    key = api_key or os.environ.get("RELAY_API_KEY")
    if not key:
        raise ValueError("no API key: pass api_key= or set RELAY_API_KEY")
    return url.rstrip("/"), key


def headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}", "User-Agent": USER_AGENT}


def idempotency_key() -> str:
    return str(uuid.uuid4())


def parse(response: httpx.Response, model: type[M]) -> M:
    return model.model_validate_json(response.content)


def raise_for_status(response: httpx.Response) -> None:
    if response.status_code >= 400:
        raise status_error(response)


def check_download(artifact: Artifact, size: int, sha256: str) -> None:
    if size != artifact.size or sha256 != artifact.sha256:
        raise ChecksumMismatchError(
            f"{artifact.name}: got {size} bytes with sha256 {sha256}, "
            f"expected {artifact.size} bytes with sha256 {artifact.sha256}"
        )


def params(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


# --- retries ---------------------------------------------------------------------------------


def _may_retry(exc: BaseException) -> bool:
    """429 and 503 were not acted on, and a connection that never opened sent nothing: those
    are retried whatever the method. A request that may have been acted on (a timeout, a
    broken connection, 502/504) only when repeating it is safe: an idempotent method, or a
    create with its Idempotency-Key."""
    if isinstance(exc, RateLimitError | ServiceUnavailableError):
        retry_after = exc.retry_after
        return retry_after is None or retry_after <= MAX_RETRY_AFTER
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return True
    request: httpx.Request | None
    if isinstance(exc, APIStatusError):
        if exc.status_code not in (502, 504):
            return False
        request = exc.response.request
    elif isinstance(exc, httpx.TransportError):
        request = request_of(exc)
    else:
        return False
    return request is not None and (
        request.method in IDEMPOTENT_METHODS or "idempotency-key" in request.headers
    )


def _wait(state: RetryCallState) -> float:
    """What the server asked for (``Retry-After``), else 0.5 s doubling to 8 s, with jitter."""
    outcome = state.outcome
    exc = outcome.exception() if outcome is not None else None
    if isinstance(exc, APIStatusError) and (asked := exc.retry_after) is not None:
        return float(asked)
    ceiling = min(8.0, 0.5 * 2.0 ** (state.attempt_number - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not a secret


def retry_options(max_retries: int) -> dict[str, Any]:
    """tenacity's Retrying / AsyncRetrying options for ``max_retries`` retries."""
    return {
        "stop": stop_after_attempt(max_retries + 1),
        "wait": _wait,
        "retry": retry_if_exception(_may_retry),
        "reraise": True,
    }


def request_of(exc: httpx.TransportError) -> httpx.Request | None:
    try:
        return exc.request
    except RuntimeError:  # raised outside a request (httpx sets it on the way out)
        return None


def transport_error(exc: httpx.TransportError) -> APIConnectionError:
    request = request_of(exc)
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"no answer in time: {exc!r}", request=request)
    return APIConnectionError(f"could not reach the API: {exc!r}", request=request)


# --- event streams ---------------------------------------------------------------------------


@dataclass
class Resume:
    """Where a task's event stream stands: the last seq passed on (``Last-Event-ID`` of the next
    connection) and whether the timeline has ended. Each seq is passed on once, in order."""

    after: int = 0
    ended: bool = False
    drops: int = 0
    max_drops: int = 10

    def request_headers(self) -> Mapping[str, str]:
        return {"Last-Event-ID": str(self.after)} if self.after else {}

    def take(self, data: str) -> TimelineEvent | None:
        """The event of an SSE ``data:`` line, or None for one already passed on."""
        event = TimelineEvent.model_validate_json(data)
        if event.seq <= self.after:
            return None
        self.after = event.seq
        self.drops = 0
        if event.terminal:
            self.ended = True
        return event

    def dropped(self, exc: BaseException) -> float:
        """Seconds to wait before reconnecting; raises when it keeps dropping."""
        self.drops += 1
        if self.drops > self.max_drops:
            raise APIConnectionError(
                f"the event stream dropped {self.drops} times in a row, last: {exc!r}"
            ) from exc
        ceiling = min(8.0, 0.25 * 2.0 ** (self.drops - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter


# An event stream breaks off in these ways; each is a reason to reconnect and resume.
STREAM_DROPS: tuple[type[BaseException], ...] = (
    httpx.TransportError,
    ServiceUnavailableError,
    RateLimitError,
)
