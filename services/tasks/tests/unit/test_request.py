"""Intake body rules, the request hash behind Idempotency-Key, and list cursors."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from pydantic import ValidationError

from tasks.cursor import decode_cursor, encode_cursor
from tasks.errors import InvalidCursor
from tasks.models import PagePosition, TaskRequest


def parse(body: Any, *, max_prompt_chars: int = 50) -> TaskRequest:
    return TaskRequest.parse(json.dumps(body).encode(), max_prompt_chars=max_prompt_chars)


VALID = [
    {"prompt": "hi"},
    {"prompt": "x" * 50},
    {"prompt": "hi", "model": "m" * 200, "metadata": {f"k{i}": "v" * 512 for i in range(16)}},
    {"prompt": "hi", "model": None, "metadata": None},
    {"prompt": "hi", "metadata": {"k" * 64: ""}},
]

INVALID = [
    ({}, "prompt"),
    ({"prompt": ""}, "prompt"),
    ({"prompt": " \n\t "}, "prompt"),
    ({"prompt": "x" * 51}, "prompt"),
    ({"prompt": 5}, "prompt"),
    ({"prompt": "hi", "model": ""}, "model"),
    ({"prompt": "hi", "model": "m" * 201}, "model"),
    ({"prompt": "hi", "metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
    ({"prompt": "hi", "metadata": {"": "v"}}, "metadata"),
    ({"prompt": "hi", "metadata": {"k" * 65: "v"}}, "metadata"),
    ({"prompt": "hi", "metadata": {"k": "v" * 513}}, "metadata"),
    ({"prompt": "hi", "metadata": {"k": 1}}, "metadata"),
    ({"prompt": "hi", "priority": "high"}, "priority"),
]


@pytest.mark.parametrize("body", VALID)
def test_valid_bodies_parse(body: dict[str, Any]) -> None:
    assert parse(body).prompt == body["prompt"]


@pytest.mark.parametrize(("body", "field"), INVALID)
def test_invalid_bodies_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse(body)
    assert {str(e["loc"][0]) for e in caught.value.errors()} == {field}


def test_malformed_json_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        TaskRequest.parse(b'{"prompt": ', max_prompt_chars=50)


def test_defaults_fill_model_and_metadata() -> None:
    new = parse({"prompt": "hi"}).with_defaults(default_model="claude-x")
    assert (new.model, new.metadata) == ("claude-x", {})
    assert parse({"prompt": "hi", "model": "other"}).with_defaults(default_model="x").model == (
        "other"
    )


def test_request_hash_ignores_key_order_and_spelt_out_defaults() -> None:
    def digest(body: dict[str, Any]) -> str:
        return parse(body).with_defaults(default_model="claude-x").request_hash()

    plain = digest({"prompt": "hi", "metadata": {"a": "1", "b": "2"}})
    assert plain == digest({"metadata": {"b": "2", "a": "1"}, "model": "claude-x", "prompt": "hi"})
    assert plain != digest({"prompt": "hi", "metadata": {"a": "1", "b": "3"}})
    assert plain != digest({"prompt": "hi ", "metadata": {"a": "1", "b": "2"}})
    assert plain != digest({"prompt": "hi", "model": "other", "metadata": {"a": "1", "b": "2"}})


def test_cursor_round_trips() -> None:
    position = PagePosition(
        created_at=datetime(2025, 1, 1, 1, 2, 3, 456789, tzinfo=UTC), id=uuid4()
    )
    cursor = encode_cursor(position)
    assert "=" not in cursor
    assert decode_cursor(cursor) == position


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not base64 !",
        "é",
        _b64("not json"),
        _b64('{"created_at": "2025-01-01T00:00:00Z"}'),
        _b64(f'{{"created_at": "yesterday", "id": "{uuid4()}"}}'),
        _b64(f'{{"created_at": "2025-01-01T00:00:00", "id": "{uuid4()}"}}'),  # no time zone
        _b64('{"created_at": "2025-01-01T00:00:00Z", "id": "nope"}'),
    ],
)
def test_bad_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor)
