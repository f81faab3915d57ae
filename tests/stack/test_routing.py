"""The routing declaration's model: queues, control queues and the rules generated from them."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from relay_ops.routing import CONTROL, MAIN, Routing, load_routing, queue_name

BASE: dict[str, Any] = {
    "version": 1,
    "events": {
        "task.submitted": {"producer": "tasks"},
        "task.cancel_requested": {"producer": "tasks"},
        "task.started": {"producer": "agent"},
    },
    "queue_defaults": {
        "visibility_timeout_seconds": 60,
        "max_receive_count": 5,
        "message_retention_seconds": 3600,
        "dlq_retention_seconds": 3600,
    },
    "target_retry_policy": {"maximum_retry_attempts": 3, "maximum_event_age_seconds": 600},
}


def _routing(services: dict[str, Any]) -> Routing:
    return Routing.model_validate({**BASE, "services": services})


def test_a_control_queue_gets_its_own_queue_and_rules() -> None:
    routing = _routing(
        {
            "tasks": {"consumes": ["task.started"]},
            "agent": {
                "consumes": ["task.submitted"],
                "queue": {"visibility_timeout_seconds": 120},
                "control": {"consumes": ["task.cancel_requested"]},
            },
        }
    )
    assert routing.queues() == [("tasks", MAIN), ("agent", MAIN), ("agent", CONTROL)]
    assert {(r.name("dev"), r.queue, r.events) for r in routing.rules()} == {
        ("relay-dev-tasks-from-agent", MAIN, ("task.started",)),
        ("relay-dev-agent-from-tasks", MAIN, ("task.submitted",)),
        ("relay-dev-agent-control-from-tasks", CONTROL, ("task.cancel_requested",)),
    }
    # overrides apply to the queue they are written under
    assert routing.queue_settings("agent").visibility_timeout_seconds == 120
    assert routing.queue_settings("agent", CONTROL).visibility_timeout_seconds == 60
    assert queue_name("dev", "agent", CONTROL) == "relay-dev-agent-control"
    assert routing.services["agent"].all_consumed() == ["task.submitted", "task.cancel_requested"]


@pytest.mark.parametrize(
    "services",
    [
        {"tasks": {"consumes": ["task.unknown"]}, "agent": {}},
        {"agent": {"consumes": ["task.submitted"], "control": {"consumes": ["task.submitted"]}}},
        {"agent": {"consumes": ["task.submitted"]}},  # tasks, a producer, is not a service
    ],
)
def test_inconsistent_declarations_are_refused(services: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        _routing(services)


def test_the_declaration_in_the_repository_is_valid() -> None:
    assert load_routing().queues()
