"""One source of truth for the public shapes: what the gateway's OpenAPI document says of each
object (gateway/models.py, by hand) must agree with the model of the service that owns it and
actually answers or reads it (tasks, artifacts, notifier). Services may not import each other;
this test may import them all.

Both sides are compared as JSON Schema with the annotations dropped (titles, descriptions,
examples, defaults) and the $refs resolved: property names, required-ness, types, enums,
formats, nullability and nesting must be equal. Bounds (minimum, maxLength, ...) are compared
where both sides state one: the owner checks several of its bounds in validators, because they
are settings (the prompt length, the budget maxima, the allowed models), so its schema cannot
show them and the gateway documents them in words.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import pytest
from pydantic import BaseModel, create_model
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import core_schema

import artifacts.models as artifacts
import gateway.models
import notifier.models as notifier
import tasks.lifecycle
import tasks.models
from gateway.app import create_app as create_gateway_app
from gateway.settings import GatewaySettings
from notifier.app import create_app as create_notifier_app
from notifier.settings import NotifierSettings
from relay_shared.internal_auth import generate_keypair
from tasks.app import create_app as create_tasks_app
from tasks.settings import TasksSettings

Schema = dict[str, Any]

ANNOTATIONS = frozenset({"title", "description", "examples", "default"})
# compared where both sides state them (see the module docstring)
BOUNDS = frozenset(
    {
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minLength",
        "maxLength",
        "pattern",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "propertyNames",
    }
)

# public shape (the gateway's component schema) -> the owner's model, and whether the owner
# answers with it (serialised) or reads it (validated)
ANSWERS: Mapping[str, type[BaseModel]] = {
    "Task": tasks.models.TaskView,
    "TaskPage": tasks.models.TaskPageView,
    "Artifact": artifacts.ArtifactView,
    "ArtifactList": artifacts.ArtifactList,
    "ArtifactDownload": artifacts.ArtifactDownloadView,
    "TimelineEvent": notifier.TimelineEvent,
    "WebhookEndpoint": notifier.WebhookEndpointView,
    "WebhookEndpointList": notifier.WebhookEndpointList,
    "WebhookEndpointWithSecret": notifier.NewWebhookEndpointView,
    "WebhookSecret": notifier.WebhookSecretView,
    "WebhookDelivery": notifier.WebhookDeliveryView,
    "WebhookDeliveryPage": notifier.WebhookDeliveryPage,
    "WebhookReplayQueued": notifier.ReplayQueued,
    "WebhookTestQueued": notifier.TestQueued,
}
BODIES: Mapping[str, type[BaseModel]] = {
    "NewTask": tasks.models.TaskRequest,
    "CancelRequest": tasks.models.CancelRequest,
    "TaskInput": tasks.models.InputRequest,
    "NewWebhookEndpoint": notifier.WebhookEndpointRequest,
    "WebhookEndpointPatch": notifier.WebhookEndpointUpdate,
    "WebhookReplayRequest": notifier.ReplayRequest,
}

# Where the gateway's document and the owner disagree today: each one changes the public
# contract (contracts/openapi.json) to put right, so it waits for a decision rather than being
# fixed here. The list is exact: a new disagreement fails, and so does one put right until it
# leaves this list.


class _AsSent(GenerateJsonSchema):
    """An answer's schema as a client receives it: every field the owner serialises is always
    there (answers are never sent with unset or None fields left out), so it is required."""

    def field_is_required(
        self,
        field: core_schema.ModelField | core_schema.DataclassField | core_schema.TypedDictField,
        total: bool,
    ) -> bool:
        if self.mode == "serialization":
            return not field.get("serialization_exclude", False)
        return super().field_is_required(field, total)


def _strip_bounds(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_bounds(v) for k, v in node.items() if k not in BOUNDS}
    if isinstance(node, list):
        return [_strip_bounds(v) for v in node]
    return node


def normalise(node: Any, definitions: Mapping[str, Any]) -> Any:
    """``node`` with its $refs resolved from ``definitions``, annotations dropped and the
    unordered lists (enum, required, anyOf) in one order; ``X | None`` is X with
    ``"nullable": true``, so that a difference inside X reads as one."""
    if isinstance(node, list):
        return [normalise(v, definitions) for v in node]
    if not isinstance(node, dict):
        return node
    if "$defs" in node:  # a model's own schema (pydantic) keeps its nested models here
        definitions = {**definitions, **node["$defs"]}
    if "$ref" in node:
        return normalise(definitions[node["$ref"].rsplit("/", 1)[-1]], definitions)
    out = {
        key: normalise(value, definitions)
        for key, value in node.items()
        if key not in ANNOTATIONS and key != "$defs"
    }
    if "properties" in out:  # property names, not schemas: never drop one called "title"
        out["properties"] = {
            name: normalise(value, definitions) for name, value in node["properties"].items()
        }
    for key in ("enum", "required"):
        if key in out:
            out[key] = sorted(out[key], key=json.dumps)
    if "anyOf" in out:
        branches = [s for s in out.pop("anyOf") if s != {"type": "null"}]
        if len(branches) < len(node["anyOf"]):
            out["nullable"] = True  # ``X | None``: X, said to be nullable
        if len(branches) == 1:
            out |= branches[0]
        else:
            out["anyOf"] = sorted(
                branches, key=lambda s: json.dumps(_strip_bounds(s), sort_keys=True)
            )
    return out


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def disagreements(documented: Any, owned: Any, path: str = "") -> list[str]:
    """Where the documented schema and the owner's differ, one line each (empty: they agree)."""
    if isinstance(documented, dict) and isinstance(owned, dict):
        found: list[str] = []
        for key in sorted(set(documented) | set(owned)):
            if key not in owned:
                if key not in BOUNDS:
                    found.append(f"{path}: {key} only documented ({_show(documented[key])})")
            elif key not in documented:
                if key not in BOUNDS:
                    found.append(f"{path}: {key} only in the owner's ({_show(owned[key])})")
            elif key in ("required", "enum") and isinstance(owned[key], list):
                only_documented = [v for v in documented[key] if v not in owned[key]]
                only_owned = [v for v in owned[key] if v not in documented[key]]
                found += [f"{path}/{key}: {_show(v)} only documented" for v in only_documented]
                found += [f"{path}/{key}: {_show(v)} only in the owner's" for v in only_owned]
            elif key == "properties":
                for name in sorted(set(documented[key]) | set(owned[key])):
                    where = f"{path}/properties/{name}"
                    if name not in owned[key]:
                        found.append(f"{where}: only documented")
                    elif name not in documented[key]:
                        found.append(f"{where}: not documented")
                    else:
                        found += disagreements(documented[key][name], owned[key][name], where)
            else:
                found += disagreements(documented[key], owned[key], f"{path}/{key}")
        return found
    if isinstance(documented, list) and isinstance(owned, list) and len(documented) == len(owned):
        return [
            line
            for i, (d, o) in enumerate(zip(documented, owned, strict=True))
            for line in disagreements(d, o, f"{path}/{i}")
        ]
    if documented != owned:
        return [f"{path}: documented {_show(documented)}, owner {_show(owned)}"]
    return []


@functools.cache
def gateway_openapi() -> Schema:
    """The public OpenAPI document, as the gateway serves it (and contracts/openapi.json holds)."""
    settings = GatewaySettings(internal_auth_private_key=generate_keypair()[0])
    return create_gateway_app(settings).openapi()


def documented(name: str) -> Schema:
    schemas = gateway_openapi()["components"]["schemas"]
    result: Schema = normalise(schemas[name], schemas)
    return result


def owned(model: type[BaseModel], *, answer: bool) -> Schema:
    """The owner's schema of what it answers with (serialised) or reads (validated)."""
    if answer:
        schema = model.model_json_schema(mode="serialization", schema_generator=_AsSent)
    else:
        schema = model.model_json_schema(mode="validation")
    result: Schema = normalise(schema, schema.get("$defs", {}))
    return result


@pytest.mark.parametrize("shape", sorted(ANSWERS))
def test_each_documented_answer_is_what_its_owner_sends(shape: str) -> None:
    found = disagreements(documented(shape), owned(ANSWERS[shape], answer=True))
    assert found == []


@pytest.mark.parametrize("shape", sorted(BODIES))
def test_each_documented_body_is_what_its_owner_reads(shape: str) -> None:
    found = disagreements(documented(shape), owned(BODIES[shape], answer=False))
    assert found == []


def test_every_documented_shape_is_compared() -> None:
    schemas = set(gateway_openapi()["components"]["schemas"])
    # their own, not a service's: the error shape is the kit's, the ticket the gateway's own
    # answer; the rest are parts of the above
    not_owned_by_a_service = {
        "NewTaskLimits",
        "ProblemDetails",
        "TaskError",
        "TaskLimits",
        "TaskQuestion",
        "TaskResult",
        "Usage",
        "WsTicket",
    }
    assert schemas - not_owned_by_a_service == set(ANSWERS) | set(BODIES)


def test_the_documented_task_statuses_are_the_lifecycles() -> None:
    statuses = documented("Task")["properties"]["status"]
    assert statuses == {
        "type": "string",
        "enum": sorted(s.value for s in tasks.lifecycle.TaskStatus),
    }


def test_the_documented_least_budgets_are_the_ones_the_tasks_service_enforces() -> None:
    # the tasks service checks them in a validator, so its schema cannot state them
    limits = documented("NewTask")["properties"]["limits"]["properties"]
    assert {name: limit["minimum"] for name, limit in limits.items()} == dict(
        tasks.models.LIMIT_MINIMA
    )


def test_the_documented_webhook_event_types_are_the_ones_the_notifier_takes() -> None:
    # both check them in a validator, so the schemas cannot show them
    assert gateway.models.WEBHOOK_EVENT_TYPES == notifier.WEBHOOK_EVENT_TYPES
    assert gateway.models.ALL_EVENT_TYPES == notifier.ALL_EVENT_TYPES


def _parameters(openapi: Schema, path: str) -> dict[str, Any]:
    """A GET's query parameters: name -> whether it is required and its schema, without the
    null an absent parameter stands for."""
    schemas = openapi["components"]["schemas"]
    found: dict[str, Any] = {}
    for parameter in openapi["paths"][path]["get"]["parameters"]:
        if parameter["in"] != "query":
            continue
        schema = normalise(parameter["schema"], schemas)
        schema.pop("nullable", None)
        found[parameter["name"]] = {"required": parameter.get("required", False), "schema": schema}
    return found


def test_the_task_list_takes_the_query_the_tasks_service_reads() -> None:
    # the gateway relays status, limit and cursor by name: a new one must be relayed too
    tasks_app = create_tasks_app(TasksSettings(internal_auth_public_key=generate_keypair()[1]))
    documented_query = _parameters(gateway_openapi(), "/v1/tasks")
    owned_query = _parameters(tasks_app.openapi(), "/internal/tasks")
    assert disagreements(documented_query, owned_query) == []


def test_the_delivery_list_takes_the_query_the_notifier_reads() -> None:
    # the gateway relays status, limit and cursor by name: a new one must be relayed too
    notifier_app = create_notifier_app(
        NotifierSettings(internal_auth_public_key=generate_keypair()[1])
    )
    documented_query = _parameters(gateway_openapi(), "/v1/webhooks/{webhook_id}/deliveries")
    owned_query = _parameters(notifier_app.openapi(), "/internal/webhooks/{webhook_id}/deliveries")
    assert disagreements(documented_query, owned_query) == []


# --- the comparison itself ---------------------------------------------------------------------


def _renamed(model: type[BaseModel], old: str, new: str) -> type[BaseModel]:
    """A copy of ``model`` with field ``old`` called ``new``."""
    fields: dict[str, Any] = {
        (new if name == old else name): (info.annotation, info)
        for name, info in model.model_fields.items()
    }
    copy: type[BaseModel] = create_model(model.__name__, **fields)
    return copy


def test_the_comparison_sees_a_renamed_field() -> None:
    drifted = _renamed(artifacts.ArtifactView, "sha256", "checksum")
    assert disagreements(documented("Artifact"), owned(drifted, answer=True)) == [
        "/properties/checksum: not documented",
        "/properties/sha256: only documented",
        '/required: "sha256" only documented',
        '/required: "checksum" only in the owner\'s',
    ]


def test_the_comparison_sees_a_new_status() -> None:
    statuses = {s.name: s.value for s in tasks.lifecycle.TaskStatus} | {"PAUSED": "paused"}
    drifted_status = StrEnum("TaskStatus", statuses)  # type: ignore[misc]
    drifted = create_model("TaskView", __base__=tasks.models.TaskView, status=(drifted_status, ...))
    assert disagreements(documented("Task"), owned(drifted, answer=True)) == [
        '/properties/status/enum: "paused" only in the owner\'s',
    ]


def test_the_comparison_sees_a_field_whose_type_or_required_ness_changed() -> None:
    reason_a_number = create_model(
        "CancelRequest", __base__=tasks.models.CancelRequest, reason=(int | None, None)
    )
    assert disagreements(documented("CancelRequest"), owned(reason_a_number, answer=False)) == [
        '/properties/reason/type: documented "string", owner "integer"'
    ]
    model_required = create_model(
        "TaskRequest", __base__=tasks.models.TaskRequest, model=(str, ...)
    )
    assert disagreements(documented("NewTask"), owned(model_required, answer=False)) == [
        "/properties/model: nullable only documented (true)",
        '/required: "model" only in the owner\'s',
    ]
    size_may_be_null = create_model(
        "ArtifactView", __base__=artifacts.ArtifactView, size=(int | None, None)
    )
    assert disagreements(documented("Artifact"), owned(size_may_be_null, answer=True)) == [
        "/properties/size: nullable only in the owner's (true)"
    ]


def test_the_comparison_compares_bounds_only_where_both_state_one() -> None:
    assert disagreements({"type": "string", "maxLength": 500}, {"type": "string"}) == []
    assert disagreements(
        {"type": "string", "maxLength": 500}, {"type": "string", "maxLength": 9}
    ) == ["/maxLength: documented 500, owner 9"]
