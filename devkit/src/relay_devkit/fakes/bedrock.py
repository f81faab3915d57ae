"""A fake of Amazon Bedrock Runtime's Claude endpoints, as the SDK's AsyncAnthropicBedrock uses
them: ``POST /model/{modelId}/invoke`` (the Messages API JSON) and
``/invoke-with-response-stream`` (event-stream frames whose payload is
``{"bytes": base64(<a Messages API stream event>)}``).

The body is the Messages API request without ``model`` (it is in the path) and with
``anthropic_version``. Requests are SigV4-signed by the client; the fake records the
``authorization`` header but does not verify the signature.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay_devkit.fakes.endpoint import FakeModelApi
from relay_devkit.fakes.eventstream import encode_message
from relay_devkit.fakes.turns import ApiError

# Bedrock's names for an HTTP error, sent in x-amzn-ErrorType
ERROR_TYPES = {
    400: "ValidationException",
    401: "UnrecognizedClientException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
    529: "ServiceUnavailableException",
}
# ... and for the same error inside a stream (the ResponseStream union's member names)
STREAM_ERROR_TYPES = {
    400: "validationException",
    408: "modelTimeoutException",
    429: "throttlingException",
    503: "serviceUnavailableException",
    529: "serviceUnavailableException",
}
CORAL = "http://internal.amazon.com/coral/com.amazon.bedrock/"


def chunk_frame(event: dict[str, Any]) -> bytes:
    payload = json.dumps({"bytes": base64.b64encode(json.dumps(event).encode()).decode()})
    headers = {
        ":event-type": "chunk",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return encode_message(headers, payload.encode())


def exception_frame(error: ApiError) -> bytes:
    headers = {
        ":exception-type": STREAM_ERROR_TYPES.get(error.status, "internalServerException"),
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return encode_message(headers, json.dumps({"message": error.message}).encode())


class FakeBedrockApi(FakeModelApi):
    stream_media_type = "application/vnd.amazon.eventstream"

    def routes(self) -> Sequence[Route]:
        return [
            Route("/model/{model_id:path}/invoke", self._invoke, methods=["POST"]),
            Route(
                "/model/{model_id:path}/invoke-with-response-stream",
                self._invoke_stream,
                methods=["POST"],
            ),
        ]

    async def _invoke(self, request: Request) -> Response:
        model = request.path_params["model_id"]
        return await self.answer(request, model=model, body=await request.json(), streamed=False)

    async def _invoke_stream(self, request: Request) -> Response:
        model = request.path_params["model_id"]
        return await self.answer(request, model=model, body=await request.json(), streamed=True)

    def error_response(self, error: ApiError) -> Response:
        name = ERROR_TYPES.get(error.status, "InternalServerException")
        headers = {"x-amzn-errortype": f"{name}:{CORAL}", **error.headers()}
        return JSONResponse({"message": error.message}, status_code=error.status, headers=headers)

    def encode_event(self, event: dict[str, Any]) -> bytes:
        if event["type"] == "message_stop":  # Bedrock adds its own metrics to the last event
            event = {**event, "amazon-bedrock-invocationMetrics": {"invocationLatency": 42}}
        return chunk_frame(event)

    def encode_stream_error(self, error: ApiError) -> bytes:
        return exception_frame(error)
