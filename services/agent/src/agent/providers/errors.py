"""SDK and transport exceptions -> ``ProviderError`` codes the agent loop acts on.

Retryable: rate_limited (429), overloaded (529), provider_unavailable (other 5xx),
connection_error (refused, reset, dropped mid-stream), timeout. Not retryable: invalid_request
(400/413/422 and other 4xx), provider_auth_failed (401/402/403), model_not_found (404).
The three SDK clients (Anthropic, Bedrock, Vertex) raise the same exception types, so one
mapping serves them all; an error *event* inside a stream arrives as an APIStatusError with
the stream's status 200 and is classified by its error type instead.
"""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
from google.auth import exceptions as google_auth

from agent.providers.base import ProviderError

RETRYABLE = frozenset(
    {"rate_limited", "overloaded", "provider_unavailable", "connection_error", "timeout"}
)

STATUS_CODES = {
    400: "invalid_request",
    401: "provider_auth_failed",
    402: "provider_auth_failed",  # billing: the account may not spend
    403: "provider_auth_failed",
    404: "model_not_found",
    408: "timeout",
    413: "invalid_request",
    422: "invalid_request",
    429: "rate_limited",
    529: "overloaded",
}

# error types as the Messages API names them, and as Bedrock names its stream exceptions
ERROR_TYPE_CODES = {
    "invalid_request_error": "invalid_request",
    "request_too_large": "invalid_request",
    "authentication_error": "provider_auth_failed",
    "permission_error": "provider_auth_failed",
    "billing_error": "provider_auth_failed",
    "not_found_error": "model_not_found",
    "rate_limit_error": "rate_limited",
    "timeout_error": "timeout",
    "api_error": "provider_unavailable",
    "overloaded_error": "overloaded",
    "validationexception": "invalid_request",
    "throttlingexception": "rate_limited",
    "modeltimeoutexception": "timeout",
    "serviceunavailableexception": "provider_unavailable",
    "internalserverexception": "provider_unavailable",
    "modelstreamerrorexception": "provider_unavailable",
}

MESSAGE_LIMIT = 200


def failure(code: str, message: str, *, retry_after: float | None = None) -> ProviderError:
    return ProviderError(
        code, message[:MESSAGE_LIMIT], retryable=code in RETRYABLE, retry_after=retry_after
    )


def provider_error(exc: BaseException) -> ProviderError | None:
    """The ProviderError for a failed model call, or None for what is not the provider's
    doing (a bug, a cancellation)."""
    if isinstance(exc, anthropic.APIStatusError):
        return _status_error(exc)
    if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
        return failure("timeout", "the model provider did not answer in time")
    if isinstance(exc, anthropic.APIConnectionError | httpx2.TransportError):
        cause = exc.__cause__ or exc
        return failure("connection_error", f"connection to the model provider failed: {cause!r}")
    if isinstance(exc, google_auth.TransportError):
        return failure("connection_error", "could not reach Google to refresh the access token")
    if isinstance(exc, google_auth.GoogleAuthError):
        return failure("provider_auth_failed", "Google credentials were refused")
    return None


def _status_error(exc: anthropic.APIStatusError) -> ProviderError:
    status = exc.status_code
    error_type = str(_error_type(exc.body) or "")
    code = ERROR_TYPE_CODES.get(error_type.lower()) if status < 400 else STATUS_CODES.get(status)
    if code is None:
        code = "provider_unavailable" if status >= 500 or status < 400 else "invalid_request"
    where = f"HTTP {status}" if status >= 400 else "error event in the stream"
    detail = _error_message(exc.body) or error_type or "no details"
    return failure(code, f"{where}: {detail}", retry_after=retry_after(exc.response.headers))


def retry_after(headers: Any) -> float | None:
    """Seconds the provider asked us to wait: ``retry-after-ms``, else ``retry-after`` in
    seconds (an HTTP date is not honoured: the loop's own backoff applies)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue
        if seconds >= 0:
            return seconds
    return None


def _error_type(body: object) -> object:
    error = body.get("error") if isinstance(body, dict) else None
    return error.get("type") if isinstance(error, dict) else None


def _error_message(body: object) -> str | None:
    """The human part of an error body: Anthropic's and Google's {error: {message}}, or
    Bedrock's {message}."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    message = error.get("message") if isinstance(error, dict) else body.get("message")
    return str(message) if message else None
