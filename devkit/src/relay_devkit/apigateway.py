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


# --- The WebSocket API (gateway/lambda_ws.py) -------------------------------------------------

WS_API_ID = "relaylive01"
WS_DOMAIN = f"{WS_API_ID}.execute-api.us-east-1.amazonaws.com"
WS_STAGE = "live"


def websocket_authorizer_event(
    *, headers: Mapping[str, str] | None = None, params: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """What API Gateway sends a REQUEST authorizer on ``$connect`` (headers as the client sent
    them, not lower-cased; no body)."""
    sent = {
        "Host": WS_DOMAIN,
        "Connection": "upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(uuid.uuid4().bytes).decode(),
        **(headers or {}),
    }
    return {
        "type": "REQUEST",
        "methodArn": f"arn:aws:execute-api:us-east-1:123456789012:{WS_API_ID}/{WS_STAGE}/$connect",
        "headers": sent,
        "multiValueHeaders": {k: [v] for k, v in sent.items()},
        "queryStringParameters": dict(params or {}),
        "multiValueQueryStringParameters": {k: [v] for k, v in (params or {}).items()},
        "stageVariables": {},
        "requestContext": {
            "routeKey": "$connect",
            "eventType": "CONNECT",
            "extendedRequestId": uuid.uuid4().hex,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "messageDirection": "IN",
            "stage": WS_STAGE,
            "connectedAt": int(time.time() * 1000),
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": "203.0.113.10", "userAgent": "relay-tests"},
            "requestId": uuid.uuid4().hex,
            "domainName": WS_DOMAIN,
            "connectionId": new_connection_id(),
            "apiId": WS_API_ID,
        },
    }


def new_connection_id() -> str:
    """An id shaped like API Gateway's (12 base64 characters ending in '=' there; letters and
    digits here, so that it needs no quoting in a URL path)."""
    return base64.b64encode(uuid.uuid4().bytes[:9]).decode().replace("+", "A").replace("/", "B")


def websocket_event(
    route: str,
    connection_id: str,
    *,
    authorizer: Mapping[str, Any],
    body: str | None = None,
) -> dict[str, Any]:
    """What API Gateway sends the integration of ``$connect``, ``$disconnect`` or ``$default``:
    ``authorizer`` is what the ``$connect`` authorizer returned (its ``principalId`` and
    ``context``), which API Gateway passes along with every route of the connection."""
    event_type = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE")
    now = int(time.time() * 1000)
    event: dict[str, Any] = {
        "requestContext": {
            "routeKey": route,
            "eventType": event_type,
            "messageDirection": "IN",
            "stage": WS_STAGE,
            "connectedAt": now,
            "requestTimeEpoch": now,
            "requestId": uuid.uuid4().hex,
            "domainName": WS_DOMAIN,
            "connectionId": connection_id,
            "apiId": WS_API_ID,
            "authorizer": {"principalId": authorizer["principalId"], **authorizer["context"]},
        },
        "isBase64Encoded": False,
    }
    if route == "$default":
        event["requestContext"]["messageId"] = uuid.uuid4().hex[:16]
        event["body"] = body or ""
    if route == "$disconnect":
        event["requestContext"]["disconnectStatusCode"] = 1000
        event["requestContext"]["disconnectReason"] = "Client-side close frame"
    return event
