"""Terraform, offline: formatted, every env initialises and validates, every env plans with
either edge (`edge = "alb"` or `"apigateway"`), and the EventBridge rules and queues it plans come
from contracts/routing.yaml exactly as relay_ops.routing reads it (the file the local bootstrap
builds from). checkov runs from the Makefile (`make terraform-check`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator, Mapping
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

EDGES = ("alb", "apigateway")
SERVICES = ("gateway", "tasks", "agent", "notifier", "artifacts")
ACCOUNT = "123456789012"  # moto's account


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


# --- Every env plans with either edge ---
#
# `terraform validate` takes no variables, so it checks only the default edge's wiring; a plan
# evaluates counts, conditional references and preconditions for the edge given. The only AWS
# call such a plan makes is STS GetCallerIdentity (data.aws_caller_identity): moto server answers
# it, and every other AWS endpoint points where nothing listens.


@pytest.fixture(scope="module")
def sts_endpoint(moto_endpoint: str) -> str:
    """GetCallerIdentity, the one AWS call a plan makes: moto server answers it."""
    return moto_endpoint


def _aws_env_vars(env: str, edge: str) -> dict[str, Any]:
    """What dev.tfvars / prod.tfvars would say (their *.tfvars.example), with the given edge.
    prod's HTTP API gets no certificate: the module issues one in the zone (both paths plan)."""
    tag = "2026.11.25-abc1234"
    issued = env == "prod" and edge == "apigateway"
    return {
        "edge": edge,
        "api_certificate_arn": None if issued else f"arn:aws:acm:eu-west-1:{ACCOUNT}:certificate/x",
        "api_domain_name": f"api.{env}.example.com",
        "api_zone_id": "Z0123456789OFFLINE",
        "ws_domain_name": f"ws.{env}.example.com" if edge == "apigateway" else None,
        "internal_auth_public_key": "offline-public-key",
        "alarm_emails": ["oncall@example.com"],
        "services": {name: {"image_tag": tag} for name in SERVICES},
    }


@pytest.fixture(scope="module")
def plannable(terraform: Terraform, initialised: Callable[[str], Path]) -> Callable[[str], Path]:
    """An env's directory that plans with no backend: dev and prod keep their state in S3, so a
    copy beside them (the modules stay at ../../modules) overrides that with the local backend."""
    done: dict[str, Path] = {}

    def prepare(env: str) -> Path:
        if env == "local":
            return initialised(env)
        if env not in done:
            copy = terraform.env_dir(f"{env}-offline")
            shutil.copytree(
                terraform.env_dir(env), copy, ignore=shutil.ignore_patterns(".terraform*")
            )
            (copy / "offline_override.tf").write_text('terraform {\n  backend "local" {}\n}\n')
            terraform.run(copy, "init", "-input=false", "-no-color")  # the local backend
            done[env] = copy
        return done[env]

    return prepare


def _plan(
    terraform: Terraform,
    cwd: Path,
    tmp_path: Path,
    sts: str,
    env: str,
    edge: str,
    variables: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``variables``: dev's or prod's, beside their tfvars' shape."""
    plan_file = tmp_path / f"{env}-{edge}.plan"
    args = [
        "-input=false",
        "-lock=false",
        "-refresh=false",
        f"-state={tmp_path / 'none.tfstate'}",
        f"-out={plan_file}",
        "-no-color",
    ]
    environ = dict(terraform.env)
    if env == "local":
        args += [f"-var=endpoint={sts}", f"-var=env={env}", f"-var=edge={edge}"]
    else:
        var_file = tmp_path / f"{env}.tfvars.json"
        var_file.write_text(json.dumps(_aws_env_vars(env, edge) | dict(variables or {})))
        args.append(f"-var-file={var_file}")
        # dev and prod name no endpoints: credentials, STS and "nowhere" come from the environment
        environ |= {
            "AWS_ACCESS_KEY_ID": "offline",
            "AWS_SECRET_ACCESS_KEY": "offline",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL": NO_ENDPOINT,
            "AWS_ENDPOINT_URL_STS": sts,
        }
    offline = Terraform(binary=terraform.binary, root=terraform.root, env=environ)
    offline.run(cwd, "plan", *args)
    return offline.json(cwd, "show", str(plan_file))


def _created(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Address -> the planned change (type, after, after_unknown) of every resource to create."""
    return {
        change["address"]: {"type": change["type"], **change["change"]}
        for change in plan["resource_changes"]
        if change["change"]["actions"] == ["create"]
    }


def _assert_serverless_edge(created: dict[str, dict[str, Any]], prefix: str, env: str) -> None:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for address, change in created.items():
        if address.startswith(prefix):
            by_type.setdefault(change["type"], []).append(change)

    functions = {f["after"]["function_name"]: f for f in by_type["aws_lambda_function"]}
    handlers = {"": "gateway.lambda_http.handler", "-ws": "gateway.lambda_ws.handler"}
    assert set(functions) == {f"relay-{env}-gateway{suffix}" for suffix in handlers}
    for suffix, handler in handlers.items():
        function = functions[f"relay-{env}-gateway{suffix}"]
        after = function["after"]
        assert after["package_type"] == "Image"
        assert after["image_config"] == [
            {
                "entry_point": ["/app/.venv/bin/python", "-m", "awslambdaric"],
                "command": [handler],
                "working_directory": "/app",
            }
        ]
        assert after["timeout"] <= 29
        assert after["tracing_config"] == [{"mode": "Active"}]
        assert len(after["vpc_config"]) == 1
        assert function["after_unknown"].get("kms_key_arn") or after.get("kms_key_arn")
        # Its variables hold ARNs and addresses not known before apply, so the plan cannot
        # show them (test_terraform_local reads them back from moto); the module refuses, when
        # planning, a secret's variable in the plain environment and a secret reference that
        # is not an ARN.
        assert len(after["environment"]) == 1

    apis = {a["after"]["protocol_type"]: a["after"] for a in by_type["aws_apigatewayv2_api"]}
    assert set(apis) == {"HTTP", "WEBSOCKET"}
    integrations = {i["after"]["integration_type"] for i in by_type["aws_apigatewayv2_integration"]}
    assert integrations == {"AWS_PROXY"}
    [http_integration] = [
        i["after"]
        for i in by_type["aws_apigatewayv2_integration"]
        if i["after"].get("payload_format_version") == "2.0"
    ]
    assert http_integration["timeout_milliseconds"] <= 29000
    routes = {r["after"]["route_key"]: r["after"] for r in by_type["aws_apigatewayv2_route"]}
    assert set(routes) == {"$default", "$connect", "$disconnect"}
    assert routes["$connect"]["authorization_type"] == "CUSTOM"
    [authorizer] = by_type["aws_apigatewayv2_authorizer"]
    assert authorizer["after"]["authorizer_type"] == "REQUEST"
    stages = {s["after"]["name"]: s["after"] for s in by_type["aws_apigatewayv2_stage"]}
    assert set(stages) == {"$default", "live"}
    for stage in stages.values():
        assert stage["auto_deploy"] is True
        access_log = stage["access_log_settings"][0]["format"]
        assert {"requestId", "ip", "routeKey", "status", "integrationLatency"} <= set(
            json.loads(access_log)
        )
        # never a request header (Authorization: API keys) nor a query string (?ticket=)
        assert "header" not in access_log.lower()
        assert "querystring" not in access_log.lower()
        assert stage["default_route_settings"][0]["throttling_rate_limit"] > 0
    assert "latency" in json.loads(stages["$default"]["access_log_settings"][0]["format"])
    assert "connectionId" in json.loads(stages["live"]["access_log_settings"][0]["format"])
    permissions = by_type["aws_lambda_permission"]
    assert [p["after"]["principal"] for p in permissions] == ["apigateway.amazonaws.com"] * 2

    [table] = by_type["aws_dynamodb_table"]
    after = table["after"]
    assert after["name"] == f"relay-{env}-ws-connections"
    assert (after["hash_key"], after["range_key"]) == ("pk", "sk")
    indexes = {i["name"]: (i["hash_key"], i["range_key"]) for i in after["global_secondary_index"]}
    assert indexes == {"by_task": ("task_id", "pk"), "by_tenant": ("tenant_all", "pk")}
    assert after["ttl"] == [{"attribute_name": "expires_at", "enabled": True}]
    assert after["server_side_encryption"][0]["enabled"] is True
    assert after["point_in_time_recovery"][0]["enabled"] is True

    alarms = {
        alarm["after"]["alarm_name"]: alarm["after"]
        for alarm in by_type["aws_cloudwatch_metric_alarm"]
    }
    metrics = sorted(alarm["metric_name"] for alarm in alarms.values())
    # both functions' errors and throttles; each API's errors and integration latency
    http_api = ["5xx", "IntegrationLatency"]
    ws_api = ["IntegrationError", "ExecutionError", "IntegrationLatency"]
    assert metrics == sorted(["Errors", "Throttles"] * 2 + http_api + ws_api)


# envs/local with the default edge is planned above (its rules and queues)
@pytest.mark.parametrize(
    ("env", "edge"),
    [(env, edge) for env in ENVS for edge in EDGES if (env, edge) != ("local", "alb")],
)
def test_each_env_plans_offline_with_either_edge(
    terraform: Terraform,
    plannable: Callable[[str], Path],
    sts_endpoint: str,
    tmp_path: Path,
    env: str,
    edge: str,
) -> None:
    plan = _plan(terraform, plannable(env), tmp_path, sts_endpoint, env, edge)
    created = _created(plan)
    types = {change["type"] for change in created.values()}

    if env == "local":
        _assert_serverless_edge(created, "module.serverless_edge[0].", env)
        return

    relay = "module.relay."
    gateway = f'{relay}module.service["gateway"].'
    assert f"{gateway}aws_ecr_repository.this" in created  # the image's home, in both modes
    for service in ("tasks", "agent", "notifier", "artifacts"):
        assert f'{relay}module.service["{service}"].aws_ecs_service.this[0]' in created
    outputs = plan["planned_values"]["outputs"]
    assert outputs["api_url"]["value"] == f"https://api.{env}.example.com"

    if edge == "alb":
        assert f"{relay}module.edge[0].aws_lb.this" in created
        assert f"{gateway}aws_ecs_service.this[0]" in created
        assert not types & {"aws_lambda_function", "aws_apigatewayv2_api", "aws_dynamodb_table"}
        assert outputs["ws_url"]["value"] == f"wss://api.{env}.example.com/v1/ws"
        assert outputs["gateway_function"]["value"] is None
    else:
        # no load balancer, WAF or ECS gateway: of the gateway's module only its repository
        assert not [a for a in created if a.startswith(f"{relay}module.edge")]
        assert not types & {"aws_lb", "aws_wafv2_web_acl"}
        assert {a for a in created if a.startswith(gateway)} == {
            f"{gateway}aws_ecr_repository.this",
            f"{gateway}aws_ecr_lifecycle_policy.this",
        }
        edge_prefix = f"{relay}module.serverless_edge[0]."
        _assert_serverless_edge(created, edge_prefix, env)
        assert outputs["ws_url"]["value"] == f"wss://ws.{env}.example.com"
        for kind in ("api", "ws"):
            domain = created[f'{edge_prefix}aws_apigatewayv2_domain_name.this["{kind}"]']["after"]
            assert domain["domain_name"] == f"{kind}.{env}.example.com"
            assert domain["domain_name_configuration"][0]["security_policy"] == "TLS_1_2"
            assert f'{edge_prefix}aws_apigatewayv2_api_mapping.this["{kind}"]' in created
            records = {
                f'{edge_prefix}aws_route53_record.alias["{kind}-{t}"]' for t in ("A", "AAAA")
            }
            assert records <= set(created)
            issued = {
                a
                for a in created
                if a.startswith(f"{edge_prefix}aws_acm_certificate") and f'["{kind}"]' in a
            }
            if env == "prod":  # no api_certificate_arn: one issued and validated per name
                assert issued == {
                    f'{edge_prefix}aws_acm_certificate.this["{kind}"]',
                    f'{edge_prefix}aws_acm_certificate_validation.this["{kind}"]',
                }
                validation = f'{edge_prefix}aws_route53_record.certificate_validation["{kind}"]'
                assert validation in created
            else:
                assert not issued
                certificate = domain["domain_name_configuration"][0]["certificate_arn"]
                assert certificate == f"arn:aws:acm:eu-west-1:{ACCOUNT}:certificate/x"
        assert f"{edge_prefix}aws_ecr_repository_policy.lambda_pull[0]" in created


# --- Hardening (issue 16): the WAF's rate limit, what the load balancer passes to the gateway,
# the queues' key, PostgreSQL's statement logs ---

# dev keeps the defaults; prod changes every setting of the load balancer's edge
HARDENING = {
    "dev": {},
    "prod": {"waf_rate_limit_per_5_minutes": 12000, "public_api_docs": True, "public_probes": True},
}
REGION = "eu-west-1"  # dev's and prod's default


@pytest.fixture(scope="module")
def hardening_plans(
    terraform: Terraform,
    plannable: Callable[[str], Path],
    sts_endpoint: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, dict[str, Any]]:
    """env -> its plan with edge = "alb" and HARDENING's settings, and envs/local's."""
    plans = {
        env: _plan(
            terraform,
            plannable(env),
            tmp_path_factory.mktemp(env),
            sts_endpoint,
            env,
            "alb",
            variables,
        )
        for env, variables in HARDENING.items()
    }
    local = tmp_path_factory.mktemp("local")
    plans["local"] = _plan(terraform, plannable("local"), local, sts_endpoint, "local", "alb")
    return plans


def _after(plan: dict[str, Any], address: str) -> dict[str, Any]:
    after: dict[str, Any] = _created(plan)[address]["after"]
    return after


def _resources(module: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every resource of a module in a plan's state values, its child modules' included."""
    yield from module.get("resources", [])
    for child in module.get("child_modules", []):
        yield from _resources(child)


@pytest.mark.parametrize("env", HARDENING)
def test_the_waf_answers_one_address_over_its_rate_with_a_429_first(
    hardening_plans: dict[str, dict[str, Any]], env: str
) -> None:
    acl = _after(hardening_plans[env], "module.relay.module.edge[0].aws_wafv2_web_acl.this")
    rules = {rule["priority"]: rule for rule in acl["rule"]}
    first = rules[min(rules)]  # before the managed rules and before the gateway
    assert first["name"] == "rate-per-address"
    [statement] = first["statement"]
    [rate] = statement["rate_based_statement"]
    assert rate["aggregate_key_type"] == "IP"
    assert rate["evaluation_window_sec"] == 300
    assert rate["limit"] == HARDENING[env].get("waf_rate_limit_per_5_minutes", 30000)
    if env == "dev":  # the default: above one tenant at the gateway's 50 requests/s for 5 min
        assert rate["limit"] > 50 * 300

    [response] = first["action"][0]["block"][0]["custom_response"]
    assert response["response_code"] == 429
    headers = {h["name"]: h["value"] for h in response["response_header"]}
    assert int(headers["Retry-After"]) > 0
    bodies = {body["key"]: body for body in acl["custom_response_body"]}
    body = bodies[response["custom_response_body_key"]]
    assert body["content_type"] == "APPLICATION_JSON"
    problem = json.loads(body["content"])
    assert (problem["status"], problem["title"]) == (429, "Too Many Requests")
    assert f"{headers['Retry-After']} s" in problem["detail"]
    # the managed rules are still there, after it
    assert {rule["name"] for rule in rules.values()} == {
        "rate-per-address",
        "common",
        "known-bad-inputs",
    }


@pytest.mark.parametrize("env", HARDENING)
def test_the_load_balancer_passes_the_api_and_the_console_and_the_rest_only_when_told(
    hardening_plans: dict[str, dict[str, Any]], env: str
) -> None:
    edge = "module.relay.module.edge[0]."
    created = _created(hardening_plans[env])
    rules = {
        address.removeprefix(edge): change["after"]
        for address, change in created.items()
        if change["type"] == "aws_lb_listener_rule"
    }

    def paths(rule: dict[str, Any]) -> set[str]:
        [condition] = rule["condition"]
        return set(condition["path_pattern"][0]["values"])

    passed = {
        address: rule for address, rule in rules.items() if rule["action"][0]["type"] == "forward"
    }
    expected = {
        'aws_lb_listener_rule.pass["api"]': {"/v1/*"},
        'aws_lb_listener_rule.pass["console"]': {"/console", "/console/*"},
    }
    if HARDENING[env].get("public_api_docs"):
        expected['aws_lb_listener_rule.pass["docs"]'] = {"/docs", "/docs/*", "/openapi.json"}
    if HARDENING[env].get("public_probes"):
        expected['aws_lb_listener_rule.pass["probes"]'] = {"/healthz", "/readyz"}
    assert {address: paths(rule) for address, rule in passed.items()} == expected
    served = set().union(*expected.values())
    assert ("/readyz" in served, "/docs" in served) == (
        bool(HARDENING[env].get("public_probes")),
        bool(HARDENING[env].get("public_api_docs")),
    )

    # everything else, the hidden paths in any spelling included: a 404 from the load balancer,
    # evaluated after every rule that passes
    not_found = rules.pop("aws_lb_listener_rule.not_found")
    assert set(rules) == set(passed)
    assert paths(not_found) == {"/*"}
    assert not_found["priority"] > max(rule["priority"] for rule in passed.values())
    [action] = not_found["action"]
    [response] = action["fixed_response"]
    assert (action["type"], response["status_code"]) == ("fixed-response", "404")
    assert response["content_type"] == "application/json"
    assert json.loads(response["message_body"])["status"] == 404

    # the health check asks the tasks directly, whatever the internet may ask
    group = _after(hardening_plans[env], f"{edge}aws_lb_target_group.gateway")
    assert group["health_check"][0]["path"] == "/readyz"


QUEUE_SERVICES = ("tasks", "agent", "notifier", "artifacts")  # the gateway consumes nothing


def test_every_queue_and_dlq_is_encrypted_with_the_platforms_key_for_the_rules_and_owners_only(
    hardening_plans: dict[str, dict[str, Any]],
) -> None:
    plan = hardening_plans["dev"]
    created = _created(plan)
    relay = "module.relay."

    queues = {a: c for a, c in created.items() if c["type"] == "aws_sqs_queue"}
    kinds = {a.split(".")[-1].split("[")[0] for a in queues}
    assert kinds == {"queue", "dlq", "delivery_dlq"}
    for address, queue in queues.items():
        # the key's ARN is known once it exists: unknown here, and not SSE-SQS
        assert queue["after_unknown"].get("kms_master_key_id") is True, address
        assert not queue["after"].get("sqs_managed_sse_enabled"), address
    # ... and that key is the platform's queue key
    platform = plan["configuration"]["root_module"]["module_calls"]["relay"]["module"]
    service = platform["module_calls"]["service"]
    assert "aws_kms_key.queues.arn" in service["expressions"]["queue_kms_key"]["references"]
    queues_call = service["module"]["module_calls"]["queues"]["expressions"]["kms_key_arn"]
    assert "var.queue_kms_key.arn" in queues_call["references"]

    key = created[f"{relay}aws_kms_key.queues"]["after"]
    assert key["enable_key_rotation"] is True
    statements = {s["Sid"]: s for s in json.loads(key["policy"])["Statement"]}
    assert set(statements) == {"AccountAdministers", "EventBridgeRulesDeliver"}
    assert statements["AccountAdministers"]["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    events = statements["EventBridgeRulesDeliver"]
    assert events["Principal"] == {"Service": "events.amazonaws.com"}
    assert sorted(events["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert events["Condition"] == {
        "ArnLike": {"aws:SourceArn": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/relay-dev/*"},
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
    }

    # each consumer's role: the key through SQS only. Their documents are read at apply (they
    # name queue ARNs not known before); the gateway's, with no queue, is read when planning.
    for name in (*QUEUE_SERVICES, "gateway"):
        by_sid = _task_statements(plan, name)
        if name == "gateway":
            assert "OwnQueuesKey" not in by_sid
            continue
        statement = by_sid["OwnQueuesKey"]
        assert sorted(statement["actions"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
        assert statement["condition"] == [
            {
                "test": "StringEquals",
                "variable": "kms:ViaService",
                "values": [f"sqs.{REGION}.amazonaws.com"],
            }
        ]
        assert len(statement["resources"]) == 1

    # envs/local stays as the local bootstrap builds it: SSE-SQS, no key to mirror on moto
    local = [c for c in _created(hardening_plans["local"]).values() if c["type"] == "aws_sqs_queue"]
    assert local
    for queue in local:
        assert queue["after"]["sqs_managed_sse_enabled"] is True
        assert queue["after"]["kms_master_key_id"] is None


def _task_statements(plan: dict[str, Any], service: str) -> dict[str, dict[str, Any]]:
    """The service's task-role policy statements by sid. Consumers' documents are read at apply
    (they name queue ARNs not known before); the gateway's, with no queue, when planning."""
    documents = {
        change["address"]: change["change"]["after"]
        for change in plan["resource_changes"]
        if change["change"]["actions"] == ["read"]
    } | {
        resource["address"]: resource["values"]
        for resource in _resources(plan["prior_state"]["values"]["root_module"])
        if resource["mode"] == "data"
    }
    address = f'module.relay.module.service["{service}"].data.aws_iam_policy_document.task[0]'
    return {s["sid"]: s for s in documents[address]["statement"]}


def test_the_agent_may_only_create_artifacts_and_the_artifacts_service_only_read_them(
    hardening_plans: dict[str, dict[str, Any]],
) -> None:
    plan = hardening_plans["dev"]

    def s3_actions(statements: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
        return {
            sid: sorted(a for a in s["actions"] if a.startswith("s3:"))
            for sid, s in statements.items()
            if any(a.startswith("s3:") for a in s["actions"])
        }

    agent = _task_statements(plan, "agent")
    assert s3_actions(agent) == {"UploadArtifacts": ["s3:PutObject"]}
    # a PUT without If-None-Match is denied: an object, once verified, cannot be replaced
    assert agent["UploadArtifacts"]["condition"] == [
        {"test": "Null", "variable": "s3:if-none-match", "values": ["false"]}
    ]
    artifacts = _task_statements(plan, "artifacts")
    assert s3_actions(artifacts) == {"VerifyAndServe": ["s3:GetObject"]}  # no write, no delete


def test_postgres_logs_no_parameter_value_of_a_slow_or_failed_statement(
    hardening_plans: dict[str, dict[str, Any]],
) -> None:
    group = _after(hardening_plans["dev"], "module.relay.module.data.aws_db_parameter_group.this")
    assert group["family"] == "postgres16"  # both parameters exist since PostgreSQL 13
    parameters = {p["name"]: p["value"] for p in group["parameter"]}
    assert parameters["log_statement"] == "ddl"
    assert parameters["log_min_duration_statement"] == "1000"
    assert parameters["log_parameter_max_length"] == "0"
    assert parameters["log_parameter_max_length_on_error"] == "0"


def test_only_the_agent_and_the_notifier_reach_the_internet(
    hardening_plans: dict[str, dict[str, Any]],
) -> None:
    created = _created(hardening_plans["dev"])
    rules = {
        address.removeprefix("module.relay."): change["after"]
        for address, change in created.items()
        if change["type"] == "aws_vpc_security_group_egress_rule"
        and address.startswith("module.relay.aws_vpc_security_group_egress_rule.service_")
    }
    internet = {a for a, rule in rules.items() if rule.get("cidr_ipv4") == "0.0.0.0/0"}
    assert internet == {
        'aws_vpc_security_group_egress_rule.service_out["agent"]',
        'aws_vpc_security_group_egress_rule.service_out["notifier"]',
    }
    for service in ("gateway", "tasks", "artifacts"):
        in_vpc = rules[f'aws_vpc_security_group_egress_rule.service_in_vpc["{service}"]']
        assert in_vpc["cidr_ipv4"] == "10.40.0.0/16"  # dev's VPC
        to_s3 = rules[f'aws_vpc_security_group_egress_rule.service_to_s3["{service}"]']
        assert (to_s3["ip_protocol"], to_s3["from_port"], to_s3["to_port"]) == ("tcp", 443, 443)
