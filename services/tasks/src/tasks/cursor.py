"""Opaque list cursors: base64url JSON of the last task's (created_at, id) sort key."""

from __future__ import annotations

import base64

from tasks.errors import InvalidCursor
from tasks.models import PagePosition


def encode_cursor(position: PagePosition) -> str:
    return base64.urlsafe_b64encode(position.model_dump_json().encode()).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> PagePosition:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return PagePosition.model_validate_json(raw)
    except ValueError as exc:  # bad base64, bad JSON and a wrong shape all land here
        raise InvalidCursor from exc
