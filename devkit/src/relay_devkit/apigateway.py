"""API Gateway HTTP API (payload format 2.0) events, as API Gateway sends them to a Lambda
function, and the function's answers read back: for driving the gateway's Lambda entry point
(gateway/lambda_http.py) in-process, in tests and the bench.

The payload's shape follows AWS's documentation of the Lambda proxy integration, version 2.0
(headers lower-cased and joined with commas, cookies apart, the query string raw and parsed,
a base64 body for binary content).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

API_ID = "relayapi01"
DOMAIN = f"{API_ID}.execute-api.us-east-1.amazonaws.com"

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def http_api_event(
    method: str,
    path: str,
    *,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    body: bytes | None = None,
    source_ip: str = "203.0.113.10",
) -> dict[str, Any]:
    """The event API Gateway's HTTP API sends for one request on its ``$default`` route."""
    raw_query = urlencode(params or {})
    lowered: dict[str, str] = {"host": DOMAIN, "user-agent": "relay-tests"}
    lowered.update({k.lower(): v for k, v in (headers or {}).items()})
    if body is not None:
        lowered.setdefault("content-length", str(len(body)))
    cookies = lowered.pop("cookie", None)
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": lowered,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": API_ID,
            "domainName": DOMAIN,
            "domainPrefix": API_ID,
            "http": {
                "method": method.upper(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered["user-agent"],
            },
            "requestId": uuid.uuid4().hex[:16],
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = [c.strip() for c in cookies.split(";")]
    if raw_query:
        event["queryStringParameters"] = dict(parse_qsl(raw_query))
    if body is not None:
        try:
            event["body"] = body.decode()
        except UnicodeDecodeError:
            event["body"] = base64.b64encode(body).decode()
            event["isBase64Encoded"] = True
    return event


@dataclass(frozen=True)
class LambdaResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def read_response(answer: Mapping[str, Any]) -> LambdaResponse:
    """A Lambda proxy answer (format 2.0) as status, lower-cased headers and body bytes."""
    raw = answer.get("body") or ""
    body = base64.b64decode(raw) if answer.get("isBase64Encoded") else raw.encode()
    headers = {k.lower(): v for k, v in (answer.get("headers") or {}).items()}
    if answer.get("cookies"):
        headers["set-cookie"] = ", ".join(answer["cookies"])
    return LambdaResponse(int(answer["statusCode"]), headers, body)


class LambdaHttpClient:
    """Requests to a Lambda handler as API Gateway would send them, one invocation each."""

    def __init__(self, handler: LambdaHandler, key: str | None = None) -> None:
        self._handler = handler
        self._key = key

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> LambdaResponse:
        sent = dict(headers or {})
        if self._key is not None:
            sent.setdefault("Authorization", f"Bearer {self._key}")
        body = None
        if json_body is not None:
            body = json.dumps(json_body).encode()
            sent.setdefault("Content-Type", "application/json")
        event = http_api_event(method, path, headers=sent, params=params, body=body)
        return read_response(self._handler(event, None))
