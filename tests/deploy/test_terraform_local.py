"""`make tf-local-smoke`: terraform/envs/local applied to a moto server builds the topology the
local bootstrap builds, and the whole local stack runs a task on it without bootstrapping.

Slow (the AWS provider waits for SQS attributes to settle, ~25 s per queue generation), so it is
marked `tf` and kept out of `make test`."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import boto3
import pytest

from relay_devkit.api_client import PublicApi
from relay_ops.routing import bus_name, delivery_dlq_name, dlq_name, load_routing, queue_name
from relay_ops.stack.config import StackConfig
from relay_ops.stack.process import running_stack
from relay_ops.stack.topology import artifacts_bucket_name, bootstrap

from .conftest import Terraform

pytestmark = pytest.mark.tf

QUEUE_ATTRIBUTES = ("VisibilityTimeout", "MessageRetentionPeriod", "RedrivePolicy", "Policy")


def _name(arn: str, env: str) -> str:
    """An ARN's last part with the env name taken out: comparable across two envs."""
    return arn.rsplit(":", 1)[-1].replace(f"relay-{env}", "relay-ENV")


def describe(endpoint: str, env: str) -> dict[str, Any]:
    """What matters of env's topology on moto, with its names made env-independent."""
    kw: dict[str, Any] = {"endpoint_url": endpoint, "region_name": "us-east-1"}
    sqs, events, s3 = (boto3.client(s, **kw) for s in ("sqs", "events", "s3"))
    routing = load_routing()

    queues: dict[str, Any] = {}
    for service, kind in routing.queues():
        for name in (
            queue_name(env, service, kind),
            dlq_name(env, service, kind),
            delivery_dlq_name(env, service, kind),
        ):
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            seen = {k: attrs.get(k) for k in QUEUE_ATTRIBUTES}
            if seen["RedrivePolicy"]:
                redrive = json.loads(seen["RedrivePolicy"])
                seen["RedrivePolicy"] = (
                    _name(redrive["deadLetterTargetArn"], env),
                    int(redrive["maxReceiveCount"]),
                )
            if seen["Policy"]:
                [statement] = json.loads(seen["Policy"])["Statement"]
                sources = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
                sources = [sources] if isinstance(sources, str) else sources
                seen["Policy"] = (
                    statement["Effect"],
                    statement["Principal"],
                    statement["Action"],
                    _name(statement["Resource"], env),
                    sorted(_name(arn, env).split("/")[-1] for arn in sources),
                )
            queues[name.replace(f"relay-{env}", "relay-ENV")] = seen

    bus = bus_name(env)
    rules: dict[str, Any] = {}
    for rule in events.list_rules(EventBusName=bus)["Rules"]:
        targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]
        rules[_name(rule["Name"], env)] = {
            "pattern": json.loads(rule["EventPattern"]),
            "state": rule["State"],
            "targets": [
                (
                    t["Id"],
                    _name(t["Arn"], env),
                    _name(t["DeadLetterConfig"]["Arn"], env),
                    t["RetryPolicy"],
                )
                for t in targets
            ],
        }

    bucket = artifacts_bucket_name(env)
    lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    [staging] = [r for r in lifecycle if r.get("Filter", {}).get("Prefix") == "staging/"]
    encryption = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    [cors] = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    return {
        "queues": queues,
        "rules": rules,
        "bucket": {
            "staging_expiry": (staging["Status"], staging["Expiration"]),
            "sse": encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"],
            "public_access_block": block,
            "cors": (
                sorted(cors["AllowedMethods"]),
                sorted(cors["AllowedOrigins"]),
                cors.get("AllowedHeaders"),
                sorted(cors.get("ExposeHeaders", [])),
                cors.get("MaxAgeSeconds"),
            ),
        },
    }


async def test_terraform_local_builds_the_bootstrap_topology_and_the_stack_runs_a_task_on_it(
    terraform: Terraform,
    moto_endpoint: str,
    database_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    env = f"tf{uuid.uuid4().hex[:8]}"
    local = terraform.env_dir("local")
    terraform.init(local)
    state = tmp_path_factory.mktemp("tf-state") / "terraform.tfstate"
    terraform.run(
        local,
        "apply",
        "-auto-approve",
        "-input=false",
        "-lock=false",
        "-parallelism=40",  # every queue at once: each waits ~25 s for its attributes
        f"-state={state}",
        f"-var=endpoint={moto_endpoint}",
        f"-var=env={env}",
        "-no-color",
        timeout=600,
    )

    # 1. The same topology as the local bootstrap's (built beside it under another env name).
    reference = f"bs{uuid.uuid4().hex[:8]}"
    # envs/local lets the console on the default gateway port read artifacts, as `relay up` does
    console = StackConfig(host="127.0.0.1", gateway_port=8000).console_origins
    bootstrap(reference, endpoint_url=moto_endpoint, console_origins=console)
    applied, bootstrapped = describe(moto_endpoint, env), describe(moto_endpoint, reference)
    assert applied["rules"] == bootstrapped["rules"]
    assert applied["queues"] == bootstrapped["queues"]
    assert applied["bucket"] == bootstrapped["bucket"]
    assert len(applied["rules"]) == len(load_routing().rules())

    # 2. The stack on that topology (no moto of its own, no bootstrap), one task through the
    #    public API: submitted, run, its artifact published and downloadable.
    state_dir = tmp_path_factory.mktemp("tf-stack")
    with running_stack(
        database_url, redis_url, state_dir, env=env, aws_endpoint_url=moto_endpoint
    ) as stack:
        assert stack.config.moto_endpoint == moto_endpoint
        assert not (state_dir / "logs" / "moto.log").exists()  # it started no moto
        api = PublicApi(stack.gateway_url, stack.create_key(f"tf-{uuid.uuid4().hex[:6]}"))
        try:
            task = await api.submit("Smoke test on Terraform's topology.\n/steps 2\n/artifact r.md")
            events = await api.timeline(task["id"], within=120)
            assert [e.event for e in events][-2:] == ["artifact.published", "task.succeeded"]
            [artifact] = await api.artifacts(task["id"])
            content = await api.http.get(
                f"/v1/tasks/{task['id']}/artifacts/{artifact['id']}/content",
                follow_redirects=True,
            )
            assert content.status_code == 200
            assert hashlib.sha256(content.content).hexdigest() == artifact["sha256"]
        finally:
            await api.aclose()
