"""What makes an upload publishable, written as data: each rule is keyed by the reason a
rejection records. Declaration rules are checked before the object is looked at; the content
check compares what S3 vouches the uploaded bytes are (size, SHA-256) with what the agent
declared."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping

from artifacts.models import ObjectDigest
from relay_shared.events import ArtifactUploaded, ArtifactUploadedData

MAX_NAME_CHARS = 255
# One PutObject holds at most 5 GiB: the agent uploads each file in one request.
MAX_UPLOAD_BYTES = 5 * 1024**3

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
    f"size is over {MAX_UPLOAD_BYTES} bytes, the most one S3 upload holds": (
        lambda event, _bucket: event.data.size > MAX_UPLOAD_BYTES
    ),
    "object is not in the artifacts bucket": lambda event, bucket: event.data.bucket != bucket,
    # the key names the tenant, task and attempt: an upload cannot point at another task's
    # files, nor at what another attempt uploaded
    "object key is not the artifact's upload key": lambda event, _bucket: (
        event.data.key != upload_key(event)
    ),
}


def declaration_problem(event: ArtifactUploaded, *, bucket: str) -> str | None:
    """Why the upload can never be published as declared, or None."""
    return next(
        (reason for reason, broken in DECLARATION_RULES.items() if broken(event, bucket)), None
    )


def content_problem(declared: ArtifactUploadedData, stored: ObjectDigest) -> str | None:
    """How the uploaded object differs from the declaration, or None when it matches."""
    if stored.sha256 is None:
        return "uploaded object has no SHA-256 checksum"
    for field in ("size", "sha256"):
        actual, expected = getattr(stored, field), getattr(declared, field)
        if actual != expected:
            return f"uploaded object's {field} is {actual}, declared {expected}"
    return None


def upload_key(event: ArtifactUploaded) -> str | None:
    """The agent's key for this artifact and attempt (agent.artifacts.upload_key); None for an
    upload that names no attempt (an agent before provenance), which no key can match."""
    meta, data = event.metadata, event.data
    if data.attempt is None:
        return None
    return (
        f"artifacts/{meta.tenant_id}/{meta.task_id}/{data.artifact_id}/{data.attempt}/{data.name}"
    )


def printable(text: str) -> str:
    """``text`` with control characters replaced, fit to store and log (PostgreSQL refuses NUL)."""
    return "".join("\ufffd" if unicodedata.category(c) == "Cc" else c for c in text)
