"""SDK exceptions -> ProviderError: the code, whether the loop retries, retry_after, a clean
message. The SDK builds these exceptions from the HTTP response, as here."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import pytest
from google.auth import exceptions as google_auth

from agent.providers.errors import provider_error, retry_after

KEY = "sk-ant-secret-key-do-not-log"


def _request() -> httpx2.Request:
    return httpx2.Request(
        "POST", "https://api.anthropic.com/v1/messages", headers={"x-api-key": KEY}
    )


def _status(status: int, body: Any, headers: dict[str, str] | None = None) -> Exception:
    response = httpx2.Response(status, headers=headers or {}, json=body, request=_request())
    return anthropic.APIStatusError(f"Error code: {status}", response=response, body=body)


def _api_body(error_type: str, message: str = "something") -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}}


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (400, "invalid_request", False),
        (413, "invalid_request", False),
        (422, "invalid_request", False),
        (418, "invalid_request", False),
        (401, "provider_auth_failed", False),
        (402, "provider_auth_failed", False),
        (403, "provider_auth_failed", False),
        (404, "model_not_found", False),
        (408, "timeout", True),
        (429, "rate_limited", True),
        (500, "provider_unavailable", True),
        (502, "provider_unavailable", True),
        (503, "provider_unavailable", True),
        (529, "overloaded", True),
    ],
)
def test_http_status_decides_the_code(status: int, code: str, retryable: bool) -> None:
    error = provider_error(_status(status, _api_body("whatever_error")))
    assert error is not None
    assert (error.code, error.retryable) == (code, retryable)
    assert error.message.startswith(f"HTTP {status}: something")


def test_rate_limit_carries_retry_after_from_the_header() -> None:
    error = provider_error(_status(429, _api_body("rate_limit_error"), {"retry-after": "2.5"}))
    assert error is not None
    assert (error.code, error.retry_after) == ("rate_limited", 2.5)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),
        ({"retry-after": "-3"}, None),
        ({}, None),
    ],
)
def test_retry_after_header_forms(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after(httpx2.Headers(headers)) == seconds


@pytest.mark.parametrize(
    ("error_type", "code", "retryable"),
    [
        ("overloaded_error", "overloaded", True),
        ("rate_limit_error", "rate_limited", True),
        ("api_error", "provider_unavailable", True),
        ("invalid_request_error", "invalid_request", False),
        ("throttlingException", "rate_limited", True),  # Bedrock's stream exception frame
        ("modelStreamErrorException", "provider_unavailable", True),
        ("validationException", "invalid_request", False),
        ("something_new_error", "provider_unavailable", True),
    ],
)
def test_an_error_event_mid_stream_is_classified_by_its_type(
    error_type: str, code: str, retryable: bool
) -> None:
    # the SDK raises an error event with the stream's own status, 200
    error = provider_error(_status(200, _api_body(error_type, "Overloaded")))
    assert error is not None
    assert (error.code, error.retryable) == (code, retryable)
    assert "error event in the stream: Overloaded" in error.message


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"message": "Too many requests"}, "Too many requests"),  # Bedrock
        ({"error": {"code": 429, "message": "Quota exceeded", "status": "x"}}, "Quota exceeded"),
        ("upstream connect error", "no details"),
    ],
)
def test_bedrock_and_google_error_bodies_give_their_message(body: Any, detail: str) -> None:
    error = provider_error(_status(429, body))
    assert error is not None
    assert error.message == f"HTTP 429: {detail}"


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (anthropic.APITimeoutError(request=_request()), "timeout"),
        (httpx2.ReadTimeout("timed out"), "timeout"),
        (httpx2.ConnectTimeout("timed out"), "timeout"),
        (anthropic.APIConnectionError(request=_request()), "connection_error"),
        (httpx2.RemoteProtocolError("peer closed connection"), "connection_error"),
        (httpx2.ReadError("connection reset"), "connection_error"),
        (google_auth.TransportError("no route"), "connection_error"),
    ],
)
def test_transport_failures_are_retryable(exc: Exception, code: str) -> None:
    error = provider_error(exc)
    assert error is not None
    assert (error.code, error.retryable) == (code, True)


def test_google_refusing_the_credentials_is_an_auth_failure() -> None:
    error = provider_error(google_auth.RefreshError("invalid_grant"))
    assert error is not None
    assert (error.code, error.retryable) == ("provider_auth_failed", False)


@pytest.mark.parametrize("exc", [ValueError("bug"), KeyError("content"), RuntimeError("x")])
def test_what_is_not_the_providers_doing_is_left_alone(exc: Exception) -> None:
    assert provider_error(exc) is None


def test_messages_are_short_and_hold_no_key() -> None:
    error = provider_error(_status(401, _api_body("authentication_error", "x" * 5000)))
    assert error is not None
    assert error.code == "provider_auth_failed"
    assert len(error.message) <= 200
    assert KEY not in str(error)
    connection = provider_error(anthropic.APIConnectionError(request=_request()))
    assert connection is not None
    assert KEY not in str(connection)
