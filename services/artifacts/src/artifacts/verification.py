"""What makes an upload publishable, written as data: each rule is keyed by the reason a
rejection records. Declaration rules are checked before the object is read; the content check
compares the bytes actually staged with what the agent declared."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from uuid import UUID

from artifacts.models import ObjectDigest
from relay_shared.events import ArtifactUploaded, ArtifactUploadedData

MAX_NAME_CHARS = 255
# CopyObject copies at most 5 GiB in one request; larger objects would need a multipart copy.
MAX_COPY_BYTES = 5 * 1024**3

_ABSOLUTE = re.compile(r"^(?:/|\\|[A-Za-z]:)")
_TCHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_TYPE = re.compile(
    rf"{_TCHARS}/{_TCHARS}(?:[ \t]*;[ \t]*{_TCHARS}=(?:{_TCHARS}|\"[^\"\x00-\x1f\x7f]*\"))*"
)


def _has_control_chars(text: str) -> bool:
    return any(unicodedata.category(char) == "Cc" for char in text)


NameRule = Callable[[str], bool]

# reason -> True when the name breaks the rule
NAME_RULES: Mapping[str, NameRule] = {
    "name is empty": lambda name: not name,
    f"name is longer than {MAX_NAME_CHARS} characters": lambda name: len(name) > MAX_NAME_CHARS,
    "name is an absolute path": lambda name: bool(_ABSOLUTE.match(name)),
    "name contains '..'": lambda name: ".." in name,
    "name contains control characters": _has_control_chars,
}

UploadRule = Callable[[ArtifactUploaded, str], bool]


def _name_rule(rule: NameRule) -> UploadRule:
    return lambda event, _bucket: rule(event.data.name)


# reason -> True when the upload event (checked against the artifacts bucket) breaks the rule
DECLARATION_RULES: Mapping[str, UploadRule] = {
    **{reason: _name_rule(rule) for reason, rule in NAME_RULES.items()},
    "content type is not a media type": lambda event, _bucket: (
        not _MEDIA_TYPE.fullmatch(event.data.content_type)
    ),
    f"size is over {MAX_COPY_BYTES} bytes, the most S3 copies in one request": (
        lambda event, _bucket: event.data.size > MAX_COPY_BYTES
    ),
    "object is not in the artifacts bucket": lambda event, bucket: event.data.bucket != bucket,
    # the key names the tenant and task: an upload cannot point at another task's files
    "object key is not the artifact's staging key": lambda event, _bucket: (
        event.data.key != staging_key(event)
    ),
}


def declaration_problem(event: ArtifactUploaded, *, bucket: str) -> str | None:
    """Why the upload can never be published as declared, or None."""
    return next(
        (reason for reason, broken in DECLARATION_RULES.items() if broken(event, bucket)), None
    )


def content_problem(declared: ArtifactUploadedData, staged: ObjectDigest) -> str | None:
    """How the staged bytes differ from the declaration, or None when they match."""
    for field in ("size", "sha256"):
        actual, expected = getattr(staged, field), getattr(declared, field)
        if actual != expected:
            return f"staged object's {field} is {actual}, declared {expected}"
    return None


def _key(prefix: str, tenant_id: str, task_id: UUID, artifact_id: UUID, name: str) -> str:
    return f"{prefix}/{tenant_id}/{task_id}/{artifact_id}/{name}"


def staging_key(event: ArtifactUploaded) -> str:
    meta, data = event.metadata, event.data
    return _key("staging", meta.tenant_id, meta.task_id, data.artifact_id, data.name)


def published_key(event: ArtifactUploaded) -> str:
    meta, data = event.metadata, event.data
    return _key("artifacts", meta.tenant_id, meta.task_id, data.artifact_id, data.name)


def printable(text: str) -> str:
    """``text`` with control characters replaced, fit to store and log (PostgreSQL refuses NUL)."""
    return "".join("\ufffd" if unicodedata.category(c) == "Cc" else c for c in text)
