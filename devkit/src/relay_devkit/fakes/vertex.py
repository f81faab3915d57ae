"""A fake of Claude on Google Vertex AI, as the SDK's AsyncAnthropicVertex uses it:
``POST /v1/projects/{p}/locations/{r}/publishers/anthropic/models/{model}:rawPredict`` and
``:streamRawPredict`` (server-sent events exactly like the Anthropic API).

The body is the Messages API request without ``model`` (it is in the path) and with
``anthropic_version``. Quota and auth errors come in Google's error format, the model's own
errors in Anthropic's. The fake records the bearer token and does not check it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay_devkit.fakes.anthropic_api import sse
from relay_devkit.fakes.endpoint import FakeModelApi
from relay_devkit.fakes.turns import ApiError

# Errors Google's front end answers itself, with its status names
GOOGLE_STATUSES = {
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
}
MODEL_PATH = "/v1/projects/{project}/locations/{region}/publishers/anthropic/models/{rest}"


class FakeVertexApi(FakeModelApi):
    def routes(self) -> Sequence[Route]:
        return [Route(MODEL_PATH, self._predict, methods=["POST"])]

    async def _predict(self, request: Request) -> Response:
        model, _, specifier = request.path_params["rest"].rpartition(":")
        if specifier not in {"rawPredict", "streamRawPredict"}:
            return JSONResponse({"error": {"code": 404, "status": "NOT_FOUND"}}, status_code=404)
        body: dict[str, Any] = await request.json()
        streamed = specifier == "streamRawPredict"
        return await self.answer(request, model=model, body=body, streamed=streamed)

    def error_response(self, error: ApiError) -> Response:
        status = GOOGLE_STATUSES.get(error.status)
        if status is None:
            return JSONResponse(error.body(), status_code=error.status, headers=error.headers())
        body = {"error": {"code": error.status, "message": error.message, "status": status}}
        return JSONResponse(body, status_code=error.status, headers=error.headers())

    def encode_event(self, event: dict[str, Any]) -> bytes:
        return sse(event)

    def encode_stream_error(self, error: ApiError) -> bytes:
        return sse(error.body())
