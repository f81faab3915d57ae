"""The gateway's side of API Gateway's WebSocket API (``edge = "apigateway"``, ADR 0016): one
Lambda handler for the ``$connect`` authorizer and the ``$connect``, ``$disconnect`` and
``$default`` routes.

    handler = gateway.lambda_ws.handler   # the image's command on Lambda (awslambdaric)

- The **authorizer** (a REQUEST authorizer on ``$connect``) accepts the same credentials as
  ``/v1/ws``: ``Authorization: Bearer <key>`` or ``?ticket=`` from ``POST /v1/ws-tickets``
  (redeemed, once). It allows the connection with the tenant in its context, which API Gateway
  hands to every later route of the connection (``requestContext.authorizer.tenant_id``);
  anything else is refused with 401 before the connection opens (there is no WebSocket yet to
  close with 4401, as ``/v1/ws`` does).
- **$connect** counts the connection once against the tenant's request rate (429 refuses it, as
  on ``/v1/ws``) and registers it with the notifier; **$disconnect** unregisters it.
- **$default** carries every client frame (``subscribe``, ``unsubscribe``, ``ping``) to the
  notifier, with a refusal for a subscribe to a task that is not the tenant's (tasks answers).

The notifier keeps connections and subscriptions in DynamoDB and sends every frame the client
gets (PostToConnection), so the frames and their order are those of ``/v1/ws``
(notifier/edge.py). The app's runtime is started once per execution environment (LambdaApp).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.security import HTTPAuthorizationCredentials

from gateway.auth import live_tenant
from gateway.lambda_http import LambdaApp
from gateway.service import Gateway, Refused
from relay_shared.problems import Problem

log = logging.getLogger(__name__)


class Unauthorized(Exception):
    """Refuses the connection with 401: the message API Gateway expects from an authorizer."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


class LambdaLive:
    """The WebSocket API's handler (built at the first invocation)."""

    def __init__(self, make_app: Any = None, *, ready_timeout: float | None = None) -> None:
        self._app = LambdaApp(make_app, ready_timeout=ready_timeout, name="gateway ws lambda")

    @property
    def app(self) -> FastAPI:
        return self._app.app

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        if event.get("type") == "REQUEST" and "methodArn" in event:
            return self._app.run(self._authorize(event))
        request = event.get("requestContext") or {}
        route = request.get("routeKey")
        connection_id = str(request.get("connectionId") or "")
        tenant = str((request.get("authorizer") or {}).get("tenant_id") or "")
        if not connection_id or not tenant:
            log.error("ws lambda: %s without a connection or an authorized tenant", route)
            return {"statusCode": 401}
        if route == "$connect":
            return self._app.run(self._connect(tenant, connection_id))
        if route == "$disconnect":
            return self._app.run(self._disconnect(tenant, connection_id))
        return self._app.run(self._frame(tenant, connection_id, event))

    @property
    def _gateway(self) -> Gateway:
        gateway: Gateway = self._app.app.state.service
        return gateway

    async def _authorize(self, event: Mapping[str, Any]) -> dict[str, Any]:
        headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        scheme, _, key = headers.get("authorization", "").partition(" ")
        credentials = (
            HTTPAuthorizationCredentials(scheme=scheme, credentials=key)
            if scheme.lower() == "bearer" and key
            else None
        )
        ticket = (event.get("queryStringParameters") or {}).get("ticket")
        try:
            tenant = await live_tenant(self._gateway, credentials, ticket)
        except Problem as problem:
            if problem.status == 401:
                raise Unauthorized() from problem
            raise  # the keys or tickets cannot be checked now: API Gateway answers 500
        return {
            "principalId": tenant,
            "policyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Action": "execute-api:Invoke",
                        "Effect": "Allow",
                        "Resource": event["methodArn"],
                    }
                ],
            },
            "context": {"tenant_id": tenant},
        }

    async def _connect(self, tenant: str, connection_id: str) -> dict[str, Any]:
        try:
            refused = (await self._gateway.admit(tenant)).problem()
            if refused is not None:
                return _answer(refused)
            await self._gateway.edge_connect(tenant, connection_id)
        except Problem as problem:
            return _answer(problem)
        except Refused as refused:
            return {"statusCode": refused.reply.status}
        return {"statusCode": 200}

    async def _disconnect(self, tenant: str, connection_id: str) -> dict[str, Any]:
        try:
            await self._gateway.edge_disconnect(tenant, connection_id)
        except (Problem, Refused) as exc:  # the items expire with the connection anyway
            log.warning("ws lambda: disconnect of %s: %s", connection_id, exc)
        return {"statusCode": 200}

    async def _frame(
        self, tenant: str, connection_id: str, event: Mapping[str, Any]
    ) -> dict[str, Any]:
        # a binary frame is not JSON: the notifier answers it with a 400 error frame
        text = "binary" if event.get("isBase64Encoded") else str(event.get("body") or "")
        try:
            await self._gateway.edge_frame(tenant, connection_id, text)
        except Problem as problem:
            log.warning("ws lambda: frame on %s: %s", connection_id, problem.title)
            return _answer(problem)
        except Refused as refused:  # not this tenant's connection (or not one any more)
            log.warning("ws lambda: frame on %s refused: %s", connection_id, refused)
            return {"statusCode": refused.reply.status}
        return {"statusCode": 200}


def _answer(problem: Problem) -> dict[str, Any]:
    return {"statusCode": problem.status}


handler = LambdaLive()
