"""The upload rules, as pure functions."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from artifacts.models import ObjectDigest
from artifacts.storage import attachment
from artifacts.verification import (
    content_problem,
    declaration_problem,
    printable,
    upload_key,
)
from relay_shared.events import ArtifactUploaded

BUCKET = "relay-local-artifacts"
Upload = Callable[..., ArtifactUploaded]


@pytest.mark.parametrize(
    "name",
    ["result.md", "reports/2024/summary.csv", "naïve café.txt", ".hidden", "x" * 255],
)
def test_ordinary_names_are_accepted(upload_event: Upload, name: str) -> None:
    assert declaration_problem(upload_event(b"x", name=name), bucket=BUCKET) is None


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "name is empty"),
        ("x" * 256, "name is longer than 255 characters"),
        ("/etc/passwd", "name is an absolute path"),
        ("\\\\server\\share.txt", "name is an absolute path"),
        ("C:\\evil.txt", "name is an absolute path"),
        ("../other-task/result.md", "name contains '..'"),
        ("notes/../../escape", "name contains '..'"),
        ("bell\x07.txt", "name contains control characters"),
        ("nul\x00.txt", "name contains control characters"),
        ("line\nbreak.txt", "name contains control characters"),
    ],
)
def test_unsafe_names_are_rejected(upload_event: Upload, name: str, reason: str) -> None:
    assert declaration_problem(upload_event(b"x", name=name), bucket=BUCKET) == reason


@pytest.mark.parametrize("content_type", ["text/plain", "application/vnd.api+json", 'a/b; q="1"'])
def test_media_types_are_accepted(upload_event: Upload, content_type: str) -> None:
    event = upload_event(b"x", content_type=content_type)
    assert declaration_problem(event, bucket=BUCKET) is None


@pytest.mark.parametrize("content_type", ["", "text", "text/html\r\nX-Evil: 1", "a b/c"])
def test_malformed_content_types_are_rejected(upload_event: Upload, content_type: str) -> None:
    event = upload_event(b"x", content_type=content_type)
    assert declaration_problem(event, bucket=BUCKET) == "content type is not a media type"


def test_object_outside_the_artifacts_bucket_is_rejected(upload_event: Upload) -> None:
    event = upload_event(b"x", bucket="someone-elses-bucket")
    assert declaration_problem(event, bucket=BUCKET) == "object is not in the artifacts bucket"


def test_key_of_another_task_is_rejected(upload_event: Upload) -> None:
    honest = upload_event(b"x", tenant_id="globex")
    forged = upload_event(b"x", tenant_id="acme", key=honest.data.key)
    assert declaration_problem(forged, bucket=BUCKET) == (
        "object key is not the artifact's upload key"
    )


def test_key_of_another_attempt_is_rejected(upload_event: Upload) -> None:
    # what attempt 1 uploaded cannot be declared again by attempt 2 (nor the other way)
    first = upload_event(b"x", attempt=1)
    forged = upload_event(
        b"x",
        attempt=2,
        task_id=first.metadata.task_id,
        artifact_id=first.data.artifact_id,
        key=first.data.key,
    )
    assert declaration_problem(forged, bucket=BUCKET) == (
        "object key is not the artifact's upload key"
    )


def test_oversized_declaration_is_rejected(upload_event: Upload) -> None:
    problem = declaration_problem(upload_event(b"x", size=6 * 1024**3), bucket=BUCKET)
    assert problem is not None
    assert problem.startswith("size is over")


def test_keys_name_tenant_task_artifact_and_attempt(upload_event: Upload) -> None:
    event = upload_event(b"x", name="out/report.md", tenant_id="acme", attempt=3)
    assert upload_key(event) == (
        f"artifacts/acme/{event.metadata.task_id}/{event.data.artifact_id}/3/out/report.md"
    )


def _digest(body: bytes) -> ObjectDigest:
    return ObjectDigest(size=len(body), sha256=hashlib.sha256(body).hexdigest())


def test_matching_content_has_no_problem(upload_event: Upload) -> None:
    assert content_problem(upload_event(b"hello").data, _digest(b"hello")) is None


def test_size_mismatch_is_named(upload_event: Upload) -> None:
    problem = content_problem(upload_event(b"hello").data, _digest(b"hello!"))
    assert problem == "uploaded object's size is 6, declared 5"


def test_sha256_mismatch_is_named(upload_event: Upload) -> None:
    declared = upload_event(b"hello").data
    problem = content_problem(declared, _digest(b"HELLO"))
    assert problem == (
        f"uploaded object's sha256 is {hashlib.sha256(b'HELLO').hexdigest()}, "
        f"declared {declared.sha256}"
    )


def test_an_object_without_a_checksum_is_not_vouched_for(upload_event: Upload) -> None:
    problem = content_problem(upload_event(b"hello").data, ObjectDigest(size=5, sha256=None))
    assert problem == "uploaded object has no SHA-256 checksum"


def test_printable_replaces_control_characters() -> None:
    assert printable("a\x00b\nc") == "a\ufffdb\ufffdc"


def test_attachment_keeps_unicode_names_and_an_ascii_fallback() -> None:
    assert attachment('rés"umé.md') == (
        "attachment; filename=\"r_s_um_.md\"; filename*=UTF-8''r%C3%A9s%22um%C3%A9.md"
    )
