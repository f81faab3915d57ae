"""The client's models say what the published OpenAPI document says: the same objects, fields
and required fields (contracts/openapi.json, which make contracts-check keeps equal to what the
gateway serves)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from relay_client import models

PUBLISHED = Path(__file__).resolve().parents[3] / "contracts" / "openapi.json"
SCHEMAS: dict[str, Any] = json.loads(PUBLISHED.read_text())["components"]["schemas"]
CLIENT_MODELS = {
    name: model
    for name, model in vars(models).items()
    if isinstance(model, type)
    and issubclass(model, BaseModel)
    and model.__module__ == models.__name__
    and model is not models.Model
}


def test_every_object_of_the_api_has_a_client_model_and_no_model_is_made_up() -> None:
    read_only = {"NewTask", "CancelRequest", "TaskInput", "NewWebhookEndpoint"}
    read_only |= {"WebhookEndpointPatch", "WebhookReplayRequest"}  # sent as arguments
    read_only |= {"WsTicket"}  # for browsers
    assert set(CLIENT_MODELS) <= set(SCHEMAS)
    assert set(SCHEMAS) - set(CLIENT_MODELS) == read_only


@pytest.mark.parametrize("name", sorted(CLIENT_MODELS))
def test_the_same_fields_and_the_client_requires_none_the_api_may_leave_out(name: str) -> None:
    schema = SCHEMAS[name]
    model = CLIENT_MODELS[name]
    assert set(model.model_fields) == set(schema["properties"])
    required = {field for field, info in model.model_fields.items() if info.is_required()}
    assert required <= set(schema.get("required", []))
