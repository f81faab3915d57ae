"""Terraform, offline: formatted, every env initialises and validates, and the EventBridge rules
and queues it plans come from contracts/routing.yaml exactly as relay_ops.routing reads it (the
file the local bootstrap builds from). checkov runs from the Makefile (`make terraform-check`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from relay_ops.routing import Routing, delivery_dlq_name, dlq_name, load_routing, queue_name
from relay_ops.stack.topology import queue_id

from .conftest import ENVS, TERRAFORM_DIR, Terraform

# runs the terraform binary (and its provider): slower than a unit test
pytestmark = pytest.mark.integration

# Nothing listens here: the plan below must not need AWS (or moto) at all.
NO_ENDPOINT = "http://127.0.0.1:9"


@pytest.fixture(scope="session")
def initialised(terraform: Terraform) -> Callable[[str], Path]:
    done: dict[str, Path] = {}

    def init(env: str) -> Path:
        if env not in done:
            terraform.init(terraform.env_dir(env))
            done[env] = terraform.env_dir(env)
        return done[env]

    return init


def test_terraform_files_are_formatted(terraform: Terraform) -> None:
    # on the repository itself: -check only reads
    terraform.run(TERRAFORM_DIR, "fmt", "-check", "-recursive", "-diff", "-no-color")


@pytest.mark.parametrize("env", ENVS)
def test_each_env_initialises_offline_and_validates(
    terraform: Terraform, initialised: Callable[[str], Path], env: str
) -> None:
    result = terraform.json(initialised(env), "validate")
    assert result["valid"], json.dumps(result["diagnostics"], indent=2)
    assert result["error_count"] == 0
    # deprecated arguments surface as warnings: keep the modules clean of them
    assert result["warning_count"] == 0, json.dumps(result["diagnostics"], indent=2)


def _variant(original: Path, target: Path) -> Path:
    """The declaration with routes changed: a plan that still matches relay_ops.routing's reading
    of it proves Terraform derives its rules from the file instead of repeating them."""
    data = yaml.safe_load(original.read_text())
    services = data["services"]
    services["gateway"]["consumes"] = ["task.succeeded", "task.failed"]
    services["notifier"]["consumes"].remove("artifact.published")
    services["tasks"]["queue"] = {"max_receive_count": 7, "visibility_timeout_seconds": 45}
    data["target_retry_policy"]["maximum_retry_attempts"] = 17
    target.write_text(yaml.safe_dump(data))
    return target


def _expected(routing: Routing, env: str) -> dict[str, Any]:
    retry = routing.target_retry_policy
    rules = {
        rule.name(env): {
            "pattern": rule.pattern(),
            "target_id": queue_id(rule.consumer, rule.queue),
            "retry": (retry.maximum_retry_attempts, retry.maximum_event_age_seconds),
        }
        for rule in routing.rules()
    }
    queues: dict[str, tuple[int, int]] = {}
    receives: dict[str, int] = {}
    for service, kind in routing.queues():
        settings = routing.queue_settings(service, kind)
        main = queue_name(env, service, kind)
        queues[main] = (settings.visibility_timeout_seconds, settings.message_retention_seconds)
        receives[main] = settings.max_receive_count
        for dead in (dlq_name(env, service, kind), delivery_dlq_name(env, service, kind)):
            queues[dead] = (30, settings.dlq_retention_seconds)  # 30: SQS's default visibility
    return {"rules": rules, "queues": queues, "max_receive_counts": receives}


def _planned(plan: dict[str, Any]) -> dict[str, Any]:
    changes = [c for c in plan["resource_changes"] if c["change"]["actions"] == ["create"]]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for change in changes:
        by_type.setdefault(change["type"], []).append(change["change"]["after"])
    targets = {t["rule"]: t for t in by_type["aws_cloudwatch_event_target"]}
    rules = {}
    for rule in by_type["aws_cloudwatch_event_rule"]:
        target = targets.pop(rule["name"])  # exactly one target per rule
        retry = target["retry_policy"][0]
        rules[rule["name"]] = {
            "pattern": json.loads(rule["event_pattern"]),
            "target_id": target["target_id"],
            "retry": (retry["maximum_retry_attempts"], retry["maximum_event_age_in_seconds"]),
        }
        assert target["dead_letter_config"], f"{rule['name']}'s target has no DLQ"
    assert not targets, f"targets without a rule: {sorted(targets)}"
    queues = {
        q["name"]: (q["visibility_timeout_seconds"], q["message_retention_seconds"])
        for q in by_type["aws_sqs_queue"]
    }
    outputs = plan["planned_values"]["outputs"]
    return {
        "rules": rules,
        "queues": queues,
        "max_receive_counts": outputs["max_receive_counts"]["value"],
    }


@pytest.mark.parametrize("declaration", ["as checked in", "changed"])
def test_the_local_plan_has_exactly_the_rules_and_queues_relay_routing_reads(
    terraform: Terraform,
    initialised: Callable[[str], Path],
    tmp_path: Path,
    declaration: str,
) -> None:
    routing_file = terraform.root / "contracts" / "routing.yaml"
    if declaration == "changed":
        routing_file = _variant(routing_file, tmp_path / "routing.yaml")
    env = "plan"
    local = initialised("local")
    plan_file = tmp_path / "local.plan"
    terraform.run(
        local,
        "plan",
        "-input=false",
        "-lock=false",
        "-refresh=false",
        f"-state={tmp_path / 'none.tfstate'}",
        f"-out={plan_file}",
        f"-var=endpoint={NO_ENDPOINT}",
        f"-var=env={env}",
        f"-var=routing_file={routing_file}",
        "-no-color",
    )
    planned = _planned(terraform.json(local, "show", str(plan_file)))

    routing = Routing.model_validate(yaml.safe_load(routing_file.read_text()))
    expected = _expected(routing, env)
    assert planned["rules"] == expected["rules"]
    assert planned["queues"] == expected["queues"]
    assert planned["max_receive_counts"] == expected["max_receive_counts"]
    if declaration == "as checked in":
        assert routing == load_routing()  # the very file the local bootstrap reads
    else:
        assert "relay-plan-gateway-from-agent" in planned["rules"]
        assert planned["queues"]["relay-plan-tasks"] == (45, 345600)
