"""The services' server spans and request durations (relay_shared.server_spans, ADR 0028)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry.trace import SpanKind, StatusCode

from relay_devkit.testing import Recorded
from relay_shared.telemetry import NO_FASTAPI_TELEMETRY, instrument_app

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"


def _app() -> FastAPI:
    app = FastAPI(telemetry=NO_FASTAPI_TELEMETRY)  # as create_service_app builds it

    @app.post("/v1/tasks/{task_id}/cancel", status_code=202)
    async def cancel(task_id: str) -> dict[str, str]:
        return {"id": task_id}

    @app.get("/fails")
    async def fails() -> None:
        raise RuntimeError("boom")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {}

    instrument_app(app)
    return app


def _servers(telemetry: Recorded) -> list[Any]:
    return [s for s in telemetry.finished() if s.kind is SpanKind.SERVER]


def _durations(telemetry: Recorded) -> dict[tuple[tuple[str, Any], ...], int]:
    """Recorded request durations: how many, by attribute set."""
    data = telemetry.metrics.get_metrics_data()
    counts: dict[tuple[tuple[str, Any], ...], int] = {}
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name != "http.server.request.duration":
                    continue
                for point in metric.data.data_points:
                    counts[tuple(sorted((point.attributes or {}).items()))] = point.count
    return counts


def test_a_request_continues_the_callers_trace_in_a_span_named_after_its_route(
    telemetry: Recorded,
) -> None:
    key = (
        ("http.request.method", "POST"),
        ("http.response.status_code", 202),
        ("http.route", "/v1/tasks/{task_id}/cancel"),
    )
    before = _durations(telemetry).get(key, 0)
    with TestClient(_app()) as client:
        answer = client.post(
            "/v1/tasks/t-1/cancel?reason=x",
            headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"},
        )
    assert answer.status_code == 202
    [span] = _servers(telemetry)
    assert span.name == "POST /v1/tasks/{task_id}/cancel"
    assert format(span.context.trace_id, "032x") == CALLER_TRACE
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == CALLER_SPAN
    attributes = dict(span.attributes or {})
    assert attributes["http.route"] == "/v1/tasks/{task_id}/cancel"
    assert attributes["http.response.status_code"] == 202
    assert attributes["url.path"] == "/v1/tasks/t-1/cancel"  # the query is never recorded
    assert span.status.status_code is StatusCode.UNSET
    assert _durations(telemetry)[key] == before + 1


def test_an_x_ray_header_is_continued_too(telemetry: Recorded) -> None:
    header = f"Root=1-{CALLER_TRACE[:8]}-{CALLER_TRACE[8:]};Parent={CALLER_SPAN};Sampled=1"
    with TestClient(_app()) as client:
        client.post("/v1/tasks/t-1/cancel", headers={"X-Amzn-Trace-Id": header})
    [span] = _servers(telemetry)
    assert format(span.context.trace_id, "032x") == CALLER_TRACE


def test_an_unhandled_error_is_a_500_span_with_the_exception(telemetry: Recorded) -> None:
    with TestClient(_app(), raise_server_exceptions=False) as client:
        assert client.get("/fails").status_code == 500
    [span] = _servers(telemetry)
    assert span.name == "GET /fails"
    assert (span.attributes or {})["http.response.status_code"] == 500
    assert span.status.status_code is StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]


def test_a_path_no_route_matches_is_named_by_its_method_alone(telemetry: Recorded) -> None:
    with TestClient(_app()) as client:
        assert client.get("/nowhere").status_code == 404
    [span] = _servers(telemetry)
    assert span.name == "GET"
    assert "http.route" not in (span.attributes or {})
    assert span.status.status_code is StatusCode.UNSET  # a client error is not the server's


def test_probes_get_no_span(telemetry: Recorded) -> None:
    with TestClient(_app()) as client:
        assert client.get("/healthz").status_code == 200
    assert _servers(telemetry) == []
