"""Trace ids, propagation helpers, the sampler, and log lines: ids in, secrets out."""

from __future__ import annotations

import io
import json
import logging
import time

import pytest
from fastapi import FastAPI, WebSocket
from fastapi.testclient import TestClient
from opentelemetry.context import Context
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from relay_devkit.testing import Recorded
from relay_shared.logs import (
    ContextFilter,
    RedactingJsonFormatter,
    log_context,
    redact,
    register_secret,
    truncate,
)
from relay_shared.telemetry import (
    NO_FASTAPI_TELEMETRY,
    SPAN_EXPORT_BATCH,
    SPAN_EXPORT_DELAY_MILLIS,
    JsonLinesSpanExporter,
    NoClientRoots,
    instrument_app,
    instrument_libraries,
    span_processor,
)
from relay_shared.tracing import (
    current_traceparent,
    from_traceparent,
    from_xray_header,
    tracer,
    with_traceparent,
    xray_header,
    xray_trace_id,
)


def test_trace_ids_are_x_ray_compatible_and_written_in_x_ray_form() -> None:
    before = int(time.time())
    trace_id = AwsXRayIdGenerator().generate_trace_id()
    assert before <= trace_id >> 96 <= int(time.time())
    xray = xray_trace_id(trace_id)
    assert xray == f"1-{trace_id >> 96:08x}-{trace_id & (2**96 - 1):024x}"


def test_w3c_and_x_ray_forms_name_the_same_span(telemetry: Recorded) -> None:
    assert current_traceparent() is None
    with tracer().start_as_current_span("work") as span:
        context = span.get_span_context()
        traceparent = current_traceparent()
        header = xray_header()
    assert traceparent == f"00-{context.trace_id:032x}-{context.span_id:016x}-01"
    assert header is not None
    assert f"Parent={context.span_id:016x}" in header
    for extracted in (from_traceparent(traceparent), from_xray_header(header)):
        assert extracted is not None
        with tracer().start_as_current_span("child", context=extracted) as child:
            assert child.get_span_context().trace_id == context.trace_id
    assert from_traceparent("garbage") is None
    assert from_xray_header(None) is None


def test_the_relay_stamps_its_send_span_into_the_event() -> None:
    detail = json.dumps({"metadata": {"event_id": "e", "traceparent": None}, "data": {}})
    stamped = json.loads(with_traceparent(detail, "00-" + "1" * 32 + "-" + "2" * 16 + "-01"))
    assert stamped["metadata"] == {"event_id": "e", "traceparent": f"00-{'1' * 32}-{'2' * 16}-01"}
    assert with_traceparent(detail, None) == detail


def test_no_trace_starts_at_a_client_call() -> None:
    sampler = NoClientRoots()
    assert sampler.should_sample(Context(), 1, "SELECT", SpanKind.CLIENT).decision is (
        Decision.DROP
    )
    for kind in (SpanKind.SERVER, SpanKind.CONSUMER, SpanKind.PRODUCER, SpanKind.INTERNAL):
        assert sampler.should_sample(Context(), 1, "work", kind).decision is (
            Decision.RECORD_AND_SAMPLE
        )


def test_client_calls_inside_a_trace_are_recorded(telemetry: Recorded) -> None:
    with (
        tracer().start_as_current_span("request", kind=SpanKind.SERVER),
        tracer().start_as_current_span("SELECT", kind=SpanKind.CLIENT),
    ):
        pass
    with tracer().start_as_current_span("poll", kind=SpanKind.CLIENT):
        pass
    assert sorted(s.name for s in telemetry.finished()) == ["SELECT", "request"]


def _json_logger(name: str) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(ContextFilter("agent"))
    handler.setFormatter(RedactingJsonFormatter("%(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, out


def test_a_json_log_line_carries_service_trace_and_task(telemetry: Recorded) -> None:
    logger, out = _json_logger("relay.test.json")
    with (
        tracer().start_as_current_span("work") as span,
        log_context(task_id="t-1", tenant_id="acme"),
    ):
        logger.info("step %d done", 2)
    logger.info("outside")
    inside, outside = (json.loads(line) for line in out.getvalue().splitlines())
    context = span.get_span_context()
    assert inside["message"] == "step 2 done"
    assert inside["service"] == "agent"
    assert inside["trace_id"] == xray_trace_id(context.trace_id)
    assert inside["span_id"] == f"{context.span_id:016x}"
    assert (inside["task_id"], inside["tenant_id"]) == ("t-1", "acme")
    assert "trace_id" not in outside
    assert "task_id" not in outside


def test_secrets_are_masked_whatever_carries_them() -> None:
    api_key = "rly_" + "k" * 43
    ticket = "rlt_" + "t" * 43
    provider_key = "sk-ant-api03-" + "p" * 40
    registered = "s3cr3t-from-secrets-manager"
    register_secret(registered)
    line = redact(
        f"key {api_key}; GET /v1/ws?ticket={ticket}; anthropic {provider_key};"
        f" headers {{'authorization': 'Bearer"
        f" eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhY21lIn0.c2lnbmF0dXJl'}}; secret {registered};"
        " url postgresql://relay:hunter2@db:5432/relay"
    )
    for secret in (api_key, ticket, provider_key, registered, "eyJhbGciOiJFZERTQSJ9", "hunter2"):
        assert secret not in line
    assert "postgresql://relay:[redacted]@db:5432/relay" in line
    assert "Bearer [redacted]" in line


def test_an_exception_with_a_key_in_it_is_masked_in_the_log_line() -> None:
    logger, out = _json_logger("relay.test.secrets")
    key = "rly_" + "x" * 43
    try:
        raise ValueError(f"bad key {key}")
    except ValueError:
        logger.exception("request failed for %s", key)
    assert key not in out.getvalue()
    assert "[redacted]" in json.loads(out.getvalue())["message"]


def test_long_prompts_are_cut_for_log_lines() -> None:
    assert truncate("short", 10) == "short"
    assert truncate("x" * 250, 200) == "x" * 200 + "… [50 more characters]"


def test_a_ticket_in_a_url_stays_out_of_the_server_span(telemetry: Recorded) -> None:
    app = FastAPI(telemetry=NO_FASTAPI_TELEMETRY)  # as create_service_app builds it

    @app.get("/events")
    async def events() -> dict[str, str]:
        return {}

    instrument_app(app)
    ticket = "rlt_" + "t" * 43
    with TestClient(app) as client:
        assert client.get(f"/events?after=3&ticket={ticket}").status_code == 200
    spans = [s for s in telemetry.finished() if s.kind is SpanKind.SERVER]
    assert spans
    values = [str(v) for span in spans for v in (span.attributes or {}).values()]
    assert "/events" in values  # the path is recorded, never the query
    assert not any(ticket in v for v in values)


def test_a_live_connection_gets_no_server_span_and_a_request_still_does(
    telemetry: Recorded,
) -> None:
    app = FastAPI(telemetry=NO_FASTAPI_TELEMETRY)  # as create_service_app builds it

    @app.get("/v1/tasks")
    async def tasks() -> dict[str, str]:
        return {}

    @app.websocket("/v1/ws")
    async def live(websocket: WebSocket) -> None:
        await websocket.accept()
        for n in range(3):
            await websocket.send_text(str(n))
        await websocket.close()

    instrument_app(app)
    with TestClient(app) as client:
        with client.websocket_connect("/v1/ws") as connection:
            assert [connection.receive_text() for _ in range(3)] == ["0", "1", "2"]
        assert client.get("/v1/tasks").status_code == 200
    servers = [s.name for s in telemetry.finished() if s.kind is SpanKind.SERVER]
    assert servers == ["GET /v1/tasks"]


def test_sql_statements_are_traced_only_when_asked() -> None:
    psycopg_spans = PsycopgInstrumentor()
    was = psycopg_spans.is_instrumented_by_opentelemetry
    if was:
        psycopg_spans.uninstrument()
    try:
        instrument_libraries()
        assert not psycopg_spans.is_instrumented_by_opentelemetry
        instrument_libraries(sql=True)
        assert psycopg_spans.is_instrumented_by_opentelemetry
    finally:
        if not was and psycopg_spans.is_instrumented_by_opentelemetry:
            psycopg_spans.uninstrument()


def test_the_span_file_holds_what_to_json_would_write() -> None:
    """The local stack's span files are read as ``ReadableSpan.to_json`` documents (relay
    trace, the bench); the exporter writes the same documents, one per line, more cheaply."""
    out = io.StringIO()
    provider = TracerProvider(resource=Resource.create({"service.name": "relay-test"}))
    finished: list[ReadableSpan] = []

    class Keep(SimpleSpanProcessor):
        def on_end(self, span: ReadableSpan) -> None:
            finished.append(span)
            super().on_end(span)

    provider.add_span_processor(Keep(JsonLinesSpanExporter(out)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("outer", kind=SpanKind.SERVER) as outer:
        link = Link(outer.get_span_context(), {"relay.why": "linked"})
        with tracer.start_as_current_span("inner", links=[link]) as inner:
            inner.set_attribute("relay.task_id", "t-1")
            inner.set_attribute("relay.steps", [1, 2])
            inner.add_event("retry", {"attempt": 2})
            inner.set_status(Status(StatusCode.ERROR, "it broke"))
    lines = out.getvalue().splitlines()
    assert [json.loads(line) for line in lines] == [json.loads(s.to_json()) for s in finished]
    assert [json.loads(line)["name"] for line in lines] == ["inner", "outer"]


def test_spans_leave_in_small_batches_unless_the_standard_variables_say_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch holds the GIL while it is encoded: the SDK's default of 512 spans stalled the
    event loop for tens of ms (telemetry.SPAN_EXPORT_BATCH)."""

    def batching() -> tuple[float, int]:
        processor = span_processor(JsonLinesSpanExporter(io.StringIO()))
        try:
            batch = processor._batch_processor
            return batch._schedule_delay * 1000, batch._max_export_batch_size
        finally:
            processor.shutdown()

    assert batching() == (SPAN_EXPORT_DELAY_MILLIS, SPAN_EXPORT_BATCH)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "5000")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "512")
    assert batching() == (5000, 512)
