"""Intake body rules (prompt, model allow-list, limits), the request hash behind Idempotency-Key,
cancel bodies, and list cursors."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from pydantic import ValidationError

from relay_shared.events import TaskLimits
from tasks.cursor import decode_cursor, encode_cursor
from tasks.errors import InvalidCursor
from tasks.models import CancelRequest, IntakeRules, PagePosition, TaskRequest

RULES = IntakeRules(
    max_prompt_chars=50,
    allowed_models=("claude-x", "other", "m" * 200),
    default_model="claude-x",
    default_limits=TaskLimits(max_turns=50, max_output_tokens=32000, max_wall_seconds=1800),
    limit_ranges={
        "max_turns": (1, 200),
        "max_output_tokens": (1, 200_000),
        "max_wall_seconds": (1.0, 21600.0),
        "max_cost_usd": (0.01, 100.0),
    },
)


def parse(body: Any, rules: IntakeRules = RULES) -> TaskRequest:
    return TaskRequest.parse(json.dumps(body).encode(), rules)


def limits_of(body: Any) -> TaskLimits:
    return parse(body).with_defaults(RULES).limits


VALID = [
    {"prompt": "hi"},
    {"prompt": "x" * 50},
    {"prompt": "hi", "model": "m" * 200, "metadata": {f"k{i}": "v" * 512 for i in range(16)}},
    {"prompt": "hi", "model": None, "metadata": None, "limits": None},
    {"prompt": "hi", "metadata": {"k" * 64: ""}},
    {"prompt": "hi", "limits": {}},
    {"prompt": "hi", "limits": {"max_turns": 1, "max_output_tokens": 1, "max_wall_seconds": 1}},
    {
        "prompt": "hi",
        "limits": {
            "max_turns": 200,
            "max_output_tokens": 200_000,
            "max_wall_seconds": 21600,
            "max_cost_usd": 100,
        },
    },
    {"prompt": "hi", "limits": {"max_cost_usd": 0.01, "max_wall_seconds": 1.5}},
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
    ({"prompt": "hi", "model": "claude-unknown"}, "model"),
    ({"prompt": "hi", "limits": {"max_turns": 0}}, "limits.max_turns"),
    ({"prompt": "hi", "limits": {"max_turns": 201}}, "limits.max_turns"),
    ({"prompt": "hi", "limits": {"max_turns": 2.0}}, "limits.max_turns"),
    ({"prompt": "hi", "limits": {"max_turns": "5"}}, "limits.max_turns"),
    ({"prompt": "hi", "limits": {"max_turns": True}}, "limits.max_turns"),
    ({"prompt": "hi", "limits": {"max_output_tokens": 0}}, "limits.max_output_tokens"),
    ({"prompt": "hi", "limits": {"max_output_tokens": 200_001}}, "limits.max_output_tokens"),
    ({"prompt": "hi", "limits": {"max_wall_seconds": 0.5}}, "limits.max_wall_seconds"),
    ({"prompt": "hi", "limits": {"max_wall_seconds": 21600.5}}, "limits.max_wall_seconds"),
    ({"prompt": "hi", "limits": {"max_wall_seconds": float("nan")}}, "limits.max_wall_seconds"),
    ({"prompt": "hi", "limits": {"max_cost_usd": 0.009}}, "limits.max_cost_usd"),
    ({"prompt": "hi", "limits": {"max_cost_usd": 100.01}}, "limits.max_cost_usd"),
    ({"prompt": "hi", "limits": {"max_cost_usd": float("inf")}}, "limits.max_cost_usd"),
    ({"prompt": "hi", "limits": {"max_steps": 3}}, "limits.max_steps"),
    ({"prompt": "hi", "limits": [50]}, "limits"),
    # PostgreSQL's text and jsonb take no NUL: refused here, not a failed insert (a 5xx)
    ({"prompt": "a\x00b"}, "prompt"),
    ({"prompt": "hi", "model": "claude-x\x00"}, "model"),
    ({"prompt": "hi", "metadata": {"k": "\x00"}}, "metadata.k"),
    ({"prompt": "hi", "metadata": {"k\x00": "v"}}, "metadata.k\x00"),
]


@pytest.mark.parametrize("body", VALID)
def test_valid_bodies_parse(body: dict[str, Any]) -> None:
    assert parse(body).prompt == body["prompt"]


@pytest.mark.parametrize(("body", "field"), INVALID)
def test_invalid_bodies_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse(body)
    depth = field.count(".") + 1
    assert {".".join(str(p) for p in e["loc"][:depth]) for e in caught.value.errors()} == {field}


@pytest.mark.parametrize(
    "body",
    [
        b'{"prompt": "a\\u0000b"}',
        b'{"prompt": "hi", "metadata": {"k": "\\u0000"}}',
        b'{"prompt": "hi", "metadata": {"\\u0000": "v"}}',
    ],
)
def test_a_nul_is_refused_with_what_is_wrong(body: bytes) -> None:
    with pytest.raises(ValidationError) as caught:
        TaskRequest.parse(body, RULES)
    [error] = caught.value.errors()
    assert (error["type"], error["msg"]) == (
        "text_nul",
        "the text must not contain a NUL character (U+0000)",
    )


def test_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(ValidationError):
        TaskRequest.parse(b'{"prompt": "a\\ud800b"}', RULES)


@pytest.mark.parametrize(
    ("limit", "value", "message"),
    [
        ("max_turns", 0, "max_turns must be between 1 and 200"),
        ("max_output_tokens", 200_001, "max_output_tokens must be between 1 and 200000"),
        ("max_wall_seconds", 0.5, "max_wall_seconds must be between 1 and 21600"),
        ("max_cost_usd", 1000, "max_cost_usd must be between 0.01 and 100"),
    ],
)
def test_a_limit_out_of_range_names_the_allowed_range(
    limit: str, value: float, message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        parse({"prompt": "hi", "limits": {limit: value}})
    [error] = caught.value.errors()
    assert (error["type"], error["msg"]) == ("limit_out_of_range", message)


def test_the_maxima_come_from_the_rules() -> None:
    tight = replace(RULES, limit_ranges={**RULES.limit_ranges, "max_turns": (1, 5)})
    assert parse({"prompt": "hi", "limits": {"max_turns": 6}}).limits is not None
    with pytest.raises(ValidationError, match="between 1 and 5"):
        parse({"prompt": "hi", "limits": {"max_turns": 6}}, tight)


def test_without_rules_the_minima_still_hold() -> None:
    with pytest.raises(ValidationError, match="max_turns must be between 1 and inf"):
        TaskRequest.model_validate({"prompt": "hi", "limits": {"max_turns": 0}})
    assert TaskRequest.model_validate({"prompt": "hi", "limits": {"max_turns": 10**6}}).limits


def test_an_unknown_model_lists_the_allowed_ones() -> None:
    with pytest.raises(ValidationError) as caught:
        parse({"prompt": "hi", "model": "gpt-4"})
    [error] = caught.value.errors()
    assert error["type"] == "model_not_allowed"
    assert error["msg"] == f"unknown model; allowed: claude-x, other, {'m' * 200}"


def test_malformed_json_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        TaskRequest.parse(b'{"prompt": ', RULES)


def test_defaults_fill_model_metadata_and_limits() -> None:
    new = parse({"prompt": "hi"}).with_defaults(RULES)
    assert (new.model, new.metadata, new.limits) == ("claude-x", {}, RULES.default_limits)
    assert parse({"prompt": "hi", "model": "other"}).with_defaults(RULES).model == "other"


def test_limits_asked_for_replace_only_their_own_defaults() -> None:
    assert limits_of({"prompt": "hi", "limits": {"max_turns": 3, "max_cost_usd": 2.5}}) == (
        TaskLimits(max_turns=3, max_output_tokens=32000, max_wall_seconds=1800, max_cost_usd=2.5)
    )
    # null is "not asked": the default stands
    assert limits_of({"prompt": "hi", "limits": {"max_turns": None}}) == RULES.default_limits
    assert limits_of({"prompt": "hi", "limits": None}) == RULES.default_limits


def test_request_hash_ignores_key_order_and_spelt_out_defaults() -> None:
    def digest(body: dict[str, Any]) -> str:
        return parse(body).with_defaults(RULES).request_hash()

    plain = digest({"prompt": "hi", "metadata": {"a": "1", "b": "2"}})
    assert plain == digest({"metadata": {"b": "2", "a": "1"}, "model": "claude-x", "prompt": "hi"})
    assert plain != digest({"prompt": "hi", "metadata": {"a": "1", "b": "3"}})
    assert plain != digest({"prompt": "hi ", "metadata": {"a": "1", "b": "2"}})
    assert plain != digest({"prompt": "hi", "model": "other", "metadata": {"a": "1", "b": "2"}})


def test_request_hash_covers_the_effective_limits() -> None:
    def digest(limits: dict[str, Any] | None) -> str:
        return parse({"prompt": "hi", "limits": limits}).with_defaults(RULES).request_hash()

    plain = digest(None)
    # the defaults spelt out (an integer for a number too) are the same request
    assert plain == digest({"max_turns": 50, "max_wall_seconds": 1800, "max_output_tokens": 32000})
    assert plain != digest({"max_turns": 49})
    assert plain != digest({"max_wall_seconds": 1800.5})
    assert plain != digest({"max_cost_usd": 1})
    # the defaults are part of it: new defaults make the same body another request
    other_defaults = replace(
        RULES, default_limits=RULES.default_limits.model_copy(update={"max_turns": 7})
    )
    assert plain != parse({"prompt": "hi"}).with_defaults(other_defaults).request_hash()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", None),
        (b"  \n", None),
        (b"{}", None),
        (b'{"reason": null}', None),
        (b'{"reason": "changed my mind"}', "changed my mind"),
        (b'{"reason": "' + b"r" * 500 + b'"}', "r" * 500),
    ],
)
def test_cancel_bodies_are_optional(body: bytes, reason: str | None) -> None:
    assert CancelRequest.parse(body).reason == reason


@pytest.mark.parametrize(
    "body",
    [b'{"reason": "' + b"r" * 501 + b'"}', b'{"reason": 5}', b'{"why": "x"}', b"[]", b"null", b"{"],
)
def test_bad_cancel_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(ValidationError):
        CancelRequest.parse(body)


def test_cursor_round_trips() -> None:
    position = PagePosition(
        created_at=datetime(2025, 1, 1, 1, 2, 3, 456789, tzinfo=UTC), id=uuid4()
    )
    cursor = encode_cursor(position)
    assert "=" not in cursor
    assert decode_cursor(cursor) == position


# fixed, not uuid4(): a test's id must be the same in every pytest-xdist worker's collection
FIXED_ID = "5f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"


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
        _b64(f'{{"created_at": "yesterday", "id": "{FIXED_ID}"}}'),
        _b64(f'{{"created_at": "2025-01-01T00:00:00", "id": "{FIXED_ID}"}}'),  # no time zone
        _b64('{"created_at": "2025-01-01T00:00:00Z", "id": "nope"}'),
    ],
)
def test_bad_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor)
