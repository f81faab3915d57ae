"""RELAY_STACK_BOOTSTRAP=false: the stack reads a topology someone else built (Terraform's
envs/local) and refuses, saying what is missing, when it is not all there."""

from __future__ import annotations

import json
import uuid

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from relay_ops.routing import bus_name, load_routing
from relay_ops.stack.topology import TopologyMissing, bootstrap, existing_topology

pytestmark = pytest.mark.integration


def test_an_existing_topology_is_read_as_the_bootstrap_built_it(moto_endpoint: str) -> None:
    env = f"ex{uuid.uuid4().hex[:8]}"
    built = bootstrap(env, endpoint_url=moto_endpoint)
    found = existing_topology(env, endpoint_url=moto_endpoint)
    assert found.queue_urls == built.queue_urls
    assert found.dlq_urls == built.dlq_urls
    assert found.delivery_dlq_urls == built.delivery_dlq_urls
    assert found.bus_arn == built.bus_arn
    assert sorted(found.rules) == sorted(built.rules)
    assert found.bucket == built.bucket


def test_a_missing_topology_is_refused_naming_what_is_missing(moto_endpoint: str) -> None:
    env = f"none{uuid.uuid4().hex[:6]}"
    with pytest.raises(TopologyMissing) as missing:
        existing_topology(env, endpoint_url=moto_endpoint)
    message = str(missing.value)
    assert f"queue relay-{env}-agent-control-dlq" in message
    assert f"event bus relay-{env}" in message
    assert f"bucket relay-{env}-artifacts" in message
    assert "terraform/envs/local" in message


def test_a_rule_with_another_pattern_is_refused(moto_endpoint: str) -> None:
    env = f"drift{uuid.uuid4().hex[:6]}"
    bootstrap(env, endpoint_url=moto_endpoint)
    rule = load_routing().rules()[0]
    events = boto3.client("events", endpoint_url=moto_endpoint, region_name="us-east-1")
    events.put_rule(
        Name=rule.name(env),
        EventBusName=bus_name(env),
        EventPattern=json.dumps({"source": [f"relay.{rule.producer}"], "detail-type": ["x"]}),
    )
    with pytest.raises(TopologyMissing, match=f"rule {rule.name(env)} with the pattern"):
        existing_topology(env, endpoint_url=moto_endpoint)


def test_the_bucket_lets_the_console_read_artifacts_and_only_the_console(
    moto_endpoint: str,
) -> None:
    env = f"cors{uuid.uuid4().hex[:6]}"
    console = "http://127.0.0.1:8000"
    topology = bootstrap(env, endpoint_url=moto_endpoint, console_origins=[console])
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")

    [rule] = s3.get_bucket_cors(Bucket=topology.bucket)["CORSRules"]
    assert rule["AllowedOrigins"] == [console]
    assert sorted(rule["AllowedMethods"]) == ["GET", "HEAD"]

    # a browser's preflight from the console is allowed, from another site refused; the read
    # (a presigned URL, as the console gets them) carries the console's origin back
    key = "artifacts/acme/report.md"
    s3.put_object(Bucket=topology.bucket, Key=key, Body=b"# report")
    signer = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    url = signer.generate_presigned_url(
        "get_object", Params={"Bucket": topology.bucket, "Key": key}
    )
    for origin, status in ((console, 200), ("https://elsewhere.example", 403)):
        preflight = httpx.options(
            url, headers={"Origin": origin, "Access-Control-Request-Method": "GET"}
        )
        assert preflight.status_code == status, origin
    read = httpx.get(url, headers={"Origin": console})
    assert read.status_code == 200
    assert read.content == b"# report"
    assert read.headers["access-control-allow-origin"] == console

    # converges: without console origins the rule goes
    bootstrap(env, endpoint_url=moto_endpoint)
    with pytest.raises(ClientError, match="NoSuchCORSConfiguration"):
        s3.get_bucket_cors(Bucket=topology.bucket)
