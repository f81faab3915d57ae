"""The agent's spans and metrics, named after the OpenTelemetry GenAI conventions: a client span
per model call (``chat <model>``) and a span per tool call (``execute_tool <name>``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import metrics
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from agent.providers.base import ModelReply, ModelRequest
from agent.tools import ToolOutcome
from relay_shared.tracing import tracer

# gen_ai.provider.name for each RELAY_LLM_PROVIDER
PROVIDER_NAMES = {"anthropic": "anthropic", "bedrock": "aws.bedrock", "vertex": "gcp.vertex_ai"}

TOKEN_USAGE = metrics.get_meter("relay").create_histogram(
    "gen_ai.client.token.usage",
    unit="{token}",
    description="Tokens per model call, by type (input, output).",
)


@contextmanager
def model_call_span(provider: str, request: ModelRequest, *, turn: int) -> Iterator[Span]:
    """Around one model call, retries included (each HTTP try is a child span)."""
    with tracer().start_as_current_span(
        f"chat {request.model}",
        kind=SpanKind.CLIENT,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": PROVIDER_NAMES.get(provider, provider),
            "gen_ai.request.model": request.model,
            "gen_ai.request.max_tokens": request.max_tokens,
            "relay.turn": turn,
        },
    ) as span:
        yield span


def record_reply(span: Span, provider: str, model: str, reply: ModelReply) -> None:
    usage = reply.usage
    span.set_attributes(
        {
            "gen_ai.response.finish_reasons": [reply.stop_reason],
            "gen_ai.usage.input_tokens": usage.input_tokens,
            "gen_ai.usage.output_tokens": usage.output_tokens,
            "gen_ai.usage.cache_read.input_tokens": usage.cache_read_input_tokens,
            "gen_ai.usage.cache_creation.input_tokens": usage.cache_creation_input_tokens,
        }
    )
    labels = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": PROVIDER_NAMES.get(provider, provider),
        "gen_ai.request.model": model,
    }
    TOKEN_USAGE.record(usage.input_tokens, {**labels, "gen_ai.token.type": "input"})
    TOKEN_USAGE.record(usage.output_tokens, {**labels, "gen_ai.token.type": "output"})


@contextmanager
def tool_call_span(name: str, call_id: str) -> Iterator[Span]:
    with tracer().start_as_current_span(
        f"execute_tool {name}",
        kind=SpanKind.INTERNAL,
        attributes={
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "gen_ai.tool.call.id": call_id,
        },
    ) as span:
        yield span


def record_tool_outcome(span: Span, outcome: ToolOutcome) -> None:
    if outcome.is_error:
        span.set_status(Status(StatusCode.ERROR, "the tool returned an error to the model"))
    if outcome.written is not None:
        span.set_attribute("relay.artifact.name", outcome.written.name)
