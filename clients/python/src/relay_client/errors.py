"""What the client raises. Every error is a RelayError; an answer with an error status is an
APIStatusError of the class for its status, carrying the problem+json the API sent."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from relay_client.models import ProblemDetails


class RelayError(Exception):
    """Anything the client raises on purpose."""


class APIConnectionError(RelayError):
    """The API could not be reached, or the connection broke, after the retries."""

    def __init__(self, message: str, *, request: httpx.Request | None = None) -> None:
        super().__init__(message)
        self.request = request


class APITimeoutError(APIConnectionError):
    """No answer within the timeout, after the retries."""


class APIStatusError(RelayError):
    """The API answered with an error status: ``status_code``, ``problem`` (what it said),
    ``response``."""

    def __init__(self, response: httpx.Response, problem: ProblemDetails | None) -> None:
        self.response = response
        self.status_code = response.status_code
        self.problem = problem
        super().__init__(_describe(response, problem))

    @property
    def retry_after(self) -> float | None:
        """Seconds the server asked to wait (``Retry-After``), if it did."""
        return parse_retry_after(self.response.headers.get("retry-after"))


class BadRequestError(APIStatusError):
    """400: the request is malformed (e.g. not JSON)."""


class AuthenticationError(APIStatusError):
    """401: no API key, or one the API does not accept."""


class PermissionDeniedError(APIStatusError):
    """403."""


class NotFoundError(APIStatusError):
    """404: no such object, or one that belongs to another tenant."""


class ConflictError(APIStatusError):
    """409: not now: a cancel of a finished task, an answer for a task that is not waiting for
    that question (answered already, or finished), or a create whose key's first call is still
    in flight."""


class PayloadTooLargeError(APIStatusError):
    """413: the body is over the API's limit."""


class UnprocessableEntityError(APIStatusError):
    """422: a field is invalid (``problem.errors`` names each one), or an Idempotency-Key was
    reused with another body."""


class RateLimitError(APIStatusError):
    """429: too many requests; retried by the client, raised when the retries are used up."""


class InternalServerError(APIStatusError):
    """5xx."""


class ServiceUnavailableError(InternalServerError):
    """503: a service the API needs is away; retried by the client."""


class ChecksumMismatchError(RelayError):
    """A downloaded artifact's bytes do not match its recorded size and sha256."""


class WebhookVerificationError(RelayError):
    """A webhook's signature, id or timestamp does not verify: do not trust its body."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}


def status_error(response: httpx.Response) -> APIStatusError:
    """The error for an answer with status >= 400."""
    problem: ProblemDetails | None
    try:
        problem = ProblemDetails.model_validate_json(response.content)
    except ValueError:
        problem = None
    kind = _BY_STATUS.get(response.status_code)
    if kind is None:
        kind = InternalServerError if response.status_code >= 500 else APIStatusError
    return kind(response, problem)


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (delay-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _describe(response: httpx.Response, problem: ProblemDetails | None) -> str:
    request = response.request
    head = f"{request.method} {request.url.path} -> {response.status_code}"
    if problem is None:
        text = response.text.strip()[:200]
        return f"{head}: {text}" if text else head
    parts = [f"{head} {problem.title}"]
    if problem.detail:
        parts.append(problem.detail)
    for error in problem.errors or []:
        parts.append(f"{error.get('location', '?')}: {error.get('message', '')}")
    return "; ".join(parts)
