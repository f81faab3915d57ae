"""Process-wide logging for a service: one JSON object per line (or text for people), each
with the service, the X-Ray trace id and span id of the current span, and the task and tenant
being worked on; secrets are masked in the finished line, whatever put them there.

What work a line belongs to comes from ``log_context`` (the SQS consumer sets it per message,
request handlers per request); trace ids come from the current OpenTelemetry span.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

from relay_shared.tracing import xray_trace_id

MASK = "[redacted]"
# Shapes of secrets that may reach a message: Relay API keys and live-connection tickets (a
# server logs a WebSocket's URL), Anthropic keys, bearer tokens (internal JWTs too), passwords
# in connection URLs.
_SECRET_SHAPES = [
    (re.compile(r"rly_[A-Za-z0-9_-]{8,}"), MASK),
    (re.compile(r"rlt_[A-Za-z0-9_-]{8,}"), MASK),
    (re.compile(r"sk-ant-[A-Za-z0-9_-]{8,}"), MASK),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), rf"\g<1>{MASK}"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), MASK),
    (re.compile(r"(?i)(x-api-key['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]{8,}"), rf"\g<1>{MASK}"),
    (re.compile(r"(://[^/\s:@]+:)[^/\s@]+@"), rf"\g<1>{MASK}@"),
]
_known_secrets: set[str] = set()
_fields: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("relay_log_fields")


def register_secret(value: str | None) -> None:
    """Mask ``value`` wherever it would appear in a log line (keys read at start-up)."""
    if value and len(value) >= 8:
        _known_secrets.add(value)


def redact(text: str) -> str:
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern, replacement in _SECRET_SHAPES:
        text = pattern.sub(replacement, text)
    return text


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters for a log line, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters]"


@contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Add ``fields`` (task_id, tenant_id, event_id…) to every line logged inside the block."""
    merged = {**_fields.get({}), **{k: v for k, v in fields.items() if v}}
    token = _fields.set(merged)
    try:
        yield
    finally:
        _fields.reset(token)


def bind_log_fields(**fields: str | None) -> None:
    """Add ``fields`` for the rest of the current task (e.g. a request's tenant)."""
    _fields.set({**_fields.get({}), **{k: v for k, v in fields.items() if v}})


class ContextFilter(logging.Filter):
    """Puts service, trace_id (X-Ray form), span_id and the log context on each record."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            record.trace_id = xray_trace_id(span.trace_id)
            record.span_id = f"{span.span_id:016x}"
        for name, value in _fields.get({}).items():
            setattr(record, name, value)
        return True


class RedactingJsonFormatter(JsonFormatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class RedactingTextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = [
            f"{name}={getattr(record, name)}"
            for name in ("task_id", "trace_id")
            if getattr(record, name, None)
        ]
        return redact(f"{line} [{' '.join(extras)}]" if extras else line)


def configure_logging(
    service: str, level: str = "INFO", *, fmt: Literal["json", "text"] = "json"
) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter(service))
    if fmt == "json":
        handler.setFormatter(
            RedactingJsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                timestamp=False,
                json_ensure_ascii=False,
            )
        )
    else:
        handler.setFormatter(
            RedactingTextFormatter(f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # botocore logs request details (including headers) at DEBUG; keep it quiet
    for noisy in ("botocore", "aiobotocore", "urllib3", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
