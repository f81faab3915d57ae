from __future__ import annotations

import json
import uuid

import pytest
from pydantic import ValidationError

from relay_shared.consumer import UnroutableMessage, decode
from relay_shared.events import (
    CATALOG,
    CLIENT_VISIBLE_EVENTS,
    TERMINAL_EVENTS,
    ArtifactUploaded,
    TaskProgressed,
    TaskProgressedData,
    TaskSubmitted,
    TaskSubmittedData,
    UnknownEvent,
    Usage,
    parse_event,
)

CONTRACT_NAMES = {
    "task.submitted": "tasks",
    "task.cancel_requested": "tasks",
    "task.started": "agent",
    "task.progressed": "agent",
    "task.input_requested": "agent",
    "task.input_provided": "tasks",
    "task.succeeded": "agent",
    "task.failed": "agent",
    "task.cancelled": "agent",
    "artifact.uploaded": "agent",
    "artifact.published": "artifacts",
}


def test_catalog_matches_the_contract_names_and_producers() -> None:
    assert {name: cls.producer for name, cls in CATALOG.items()} == CONTRACT_NAMES
    assert TERMINAL_EVENTS == {"task.succeeded", "task.failed", "task.cancelled"}
    assert CLIENT_VISIBLE_EVENTS == set(CONTRACT_NAMES) - {"artifact.uploaded"}


def test_wire_name_is_explicit_not_the_class_name() -> None:
    for name, cls in CATALOG.items():
        assert cls.__dict__.get("name") == name, f"{cls.__name__} must set its wire name"


def test_create_carries_correlation_and_causation_forward() -> None:
    task_id = uuid.uuid4()
    submitted = TaskSubmitted.create(
        TaskSubmittedData(prompt="p", model="m"),
        tenant_id="acme",
        task_id=task_id,
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )
    progressed = TaskProgressed.create(
        TaskProgressedData(attempt=1, step=1, message="m", usage=Usage()),
        tenant_id="acme",
        task_id=task_id,
        caused_by=submitted.metadata,
    )
    assert submitted.metadata.correlation_id == str(task_id)
    assert progressed.metadata.correlation_id == submitted.metadata.correlation_id
    assert progressed.metadata.causation_id == str(submitted.metadata.event_id)
    assert progressed.metadata.traceparent == submitted.metadata.traceparent
    assert progressed.metadata.producer == "agent"
    assert progressed.metadata.event_id != submitted.metadata.event_id


def test_an_event_survives_the_bus_round_trip() -> None:
    event = TaskSubmitted.create(
        TaskSubmittedData(prompt="p", model="m", metadata={"k": "v"}),
        tenant_id="acme",
        task_id=uuid.uuid4(),
    )
    body = json.dumps(
        {"detail-type": event.name, "source": event.source(), "detail": event.detail()}
    )
    assert decode(body) == event


def test_readers_ignore_fields_they_do_not_know() -> None:
    event = TaskSubmitted.create(
        TaskSubmittedData(prompt="p", model="m"), tenant_id="t", task_id=uuid.uuid4()
    )
    detail = event.detail()
    detail["data"]["added_later"] = 1
    detail["metadata"]["also_new"] = "x"
    assert parse_event("task.submitted", detail) == event


def test_unknown_and_malformed_events_are_refused() -> None:
    with pytest.raises(UnknownEvent):
        parse_event("task.exploded", {})
    with pytest.raises(UnroutableMessage):
        decode("not json")
    with pytest.raises(ValidationError):
        parse_event("artifact.uploaded", {"metadata": {}, "data": {"sha256": "nothex"}})


def test_artifact_events_require_a_sha256_hex_digest() -> None:
    fields = ArtifactUploaded.model_fields["data"].annotation
    assert fields is not None
    with pytest.raises(ValidationError):
        fields.model_validate(
            {
                "artifact_id": str(uuid.uuid4()),
                "name": "a",
                "content_type": "text/plain",
                "size": 1,
                "sha256": "A" * 64,
                "bucket": "b",
                "key": "k",
            }
        )


def test_usage_adds_up() -> None:
    total = Usage(input_tokens=1, output_tokens=2) + Usage(
        input_tokens=3, cache_read_input_tokens=4
    )
    assert total == Usage(input_tokens=4, output_tokens=2, cache_read_input_tokens=4)
