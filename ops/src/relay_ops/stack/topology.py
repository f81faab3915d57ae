"""Local bootstrap: builds the event bus, rules, queues, DLQs and the artifacts bucket from the
routing declaration. Idempotent: run it again and it converges (rules no longer declared go).

On AWS, Terraform builds the same topology from the same file; when Terraform built it locally
(terraform/envs/local on moto), existing_topology() reads and checks it instead.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import boto3
from botocore.exceptions import ClientError

from relay_ops.routing import (
    MAIN,
    Routing,
    bus_name,
    delivery_dlq_name,
    dlq_name,
    load_routing,
    queue_name,
)
from relay_shared.internal_auth import jwks, public_key_of

STAGING_EXPIRY_DAYS = 1
# The web console reads artifact download links (presigned URLs) for its previews.
CORS_MAX_AGE_SECONDS = 3600


def artifacts_bucket_name(env: str) -> str:
    return f"relay-{env}-artifacts"


def queue_id(service: str, kind: str = MAIN) -> str:
    """Key of a queue in Topology's maps: the service for its main queue, else service-kind."""
    return service if kind == MAIN else f"{service}-{kind}"


def ws_connections_table_name(env: str) -> str:
    """The WebSocket API's connection table (Terraform's, on the API Gateway edge)."""
    return f"relay-{env}-ws-connections"


def ws_connections_table(env: str, *, endpoint_url: str | None, region: str) -> str:
    """Create the WebSocket API's connection table as Terraform declares it (keys, the two
    sparse indexes, TTL), if it is not there; returns its name. The notifier uses it only when
    RELAY_EDGE_CONNECTIONS_TABLE names it (the API Gateway edge, notifier/edge.py)."""
    client: Any = boto3.client("dynamodb", region_name=region, endpoint_url=endpoint_url)
    name = ws_connections_table_name(env)
    strings = ("pk", "sk", "task_id", "tenant_all")
    try:
        client.create_table(
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in strings],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": index,
                    "KeySchema": [
                        {"AttributeName": attribute, "KeyType": "HASH"},
                        {"AttributeName": "pk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
                for index, attribute in (("by_task", "task_id"), ("by_tenant", "tenant_all"))
            ],
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
    try:
        client.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
        )
    except ClientError as exc:  # already enabled (a second bootstrap)
        if exc.response["Error"]["Code"] != "ValidationException":
            raise
    return name


def signing_key_secret_name(env: str) -> str:
    """The gateway's signing key in Secrets Manager (terraform/modules/secrets names it so)."""
    return f"relay/{env}/internal-auth-private-key"


def jwks_secret_name(env: str) -> str:
    """The public keys internal services trust (a JWKS document; terraform/modules/secrets)."""
    return f"relay/{env}/internal-auth-jwks"


def store_signing_key(env: str, private_key: str, *, endpoint_url: str, region: str) -> str:
    """Put the gateway's signing key where a deployment keeps it, and its public half in the
    JWKS the services trust, so that the gateway (RELAY_INTERNAL_AUTH_PRIVATE_KEY_SECRET_ID,
    the Lambda entry point) and the services (RELAY_INTERNAL_AUTH_JWKS_SECRET_ID) read them from
    moto as from Secrets Manager, and a rotation works as on AWS. Returns the signing key
    secret's ARN. Local only: the key is made anew at every start."""
    store_secret(jwks_secret_name(env), jwks(public_key_of(private_key)), endpoint_url, region)
    return store_secret(signing_key_secret_name(env), private_key, endpoint_url, region)


def store_secret(name: str, value: str, endpoint_url: str, region: str) -> str:
    """Create or overwrite secret ``name``; its ARN."""
    client: Any = boto3.client("secretsmanager", region_name=region, endpoint_url=endpoint_url)
    try:
        return str(client.create_secret(Name=name, SecretString=value)["ARN"])
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceExistsException":
            raise
    client.put_secret_value(SecretId=name, SecretString=value)
    return str(client.describe_secret(SecretId=name)["ARN"])


@dataclass
class Topology:
    env: str
    bus_arn: str = ""
    # keyed by queue_id(): topology.queue_urls["agent"], topology.queue_urls["agent-control"]
    queue_urls: dict[str, str] = field(default_factory=dict)
    dlq_urls: dict[str, str] = field(default_factory=dict)
    delivery_dlq_urls: dict[str, str] = field(default_factory=dict)
    rules: list[str] = field(default_factory=list)
    bucket: str = ""
    ws_connections_table: str = ""


def _clients(endpoint_url: str | None, region: str) -> tuple[Any, Any, Any]:
    kw: dict[str, Any] = {"region_name": region, "endpoint_url": endpoint_url}
    return boto3.client("events", **kw), boto3.client("sqs", **kw), boto3.client("s3", **kw)


def _queue(sqs: Any, name: str, attributes: dict[str, str]) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    # create_queue refuses changed attributes on an existing queue; set them separately.
    sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def bootstrap(
    env: str,
    *,
    endpoint_url: str | None,
    region: str = "us-east-1",
    routing: Routing | None = None,
    bucket: str | None = None,
    console_origins: Sequence[str] = (),
) -> Topology:
    """``console_origins``: where the web console is served (the gateway's origin); the bucket
    lets them GET artifacts (CORS), as Terraform lets the CloudFront domain."""
    routing = routing or load_routing()
    events, sqs, s3 = _clients(endpoint_url, region)
    topo = Topology(env=env)
    bus = bus_name(env)

    queue_arns: dict[str, str] = {}
    delivery_arns: dict[str, str] = {}
    rules_by_queue: dict[str, list[str]] = {}
    for rule in routing.rules():
        rules_by_queue.setdefault(queue_id(rule.consumer, rule.queue), []).append(rule.name(env))

    for service, kind in routing.queues():
        qid = queue_id(service, kind)
        qs = routing.queue_settings(service, kind)
        retention = {"MessageRetentionPeriod": str(qs.dlq_retention_seconds)}
        dlq_url, dlq_arn = _queue(sqs, dlq_name(env, service, kind), retention)
        ddlq_url, ddlq_arn = _queue(sqs, delivery_dlq_name(env, service, kind), retention)
        url, arn = _queue(
            sqs,
            queue_name(env, service, kind),
            {
                "VisibilityTimeout": str(qs.visibility_timeout_seconds),
                "MessageRetentionPeriod": str(qs.message_retention_seconds),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": qs.max_receive_count}
                ),
            },
        )
        topo.queue_urls[qid] = url
        topo.dlq_urls[qid] = dlq_url
        topo.delivery_dlq_urls[qid] = ddlq_url
        queue_arns[qid] = arn
        delivery_arns[qid] = ddlq_arn

    # The bus comes after the queues and right before its rules: an event published to a bus
    # without rules goes nowhere, so that window stays as short as a few calls (it matters
    # when moto comes back empty while the services keep publishing).
    try:
        topo.bus_arn = events.create_event_bus(Name=bus)["EventBusArn"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
            raise
        topo.bus_arn = events.describe_event_bus(Name=bus)["Arn"]
    retry = routing.target_retry_policy
    for rule in routing.rules():
        name = rule.name(env)
        events.put_rule(
            Name=name,
            EventBusName=bus,
            EventPattern=json.dumps(rule.pattern()),
            State="ENABLED",
            Description=f"{', '.join(rule.events)} from {rule.producer} to {rule.consumer}",
        )
        events.put_targets(
            Rule=name,
            EventBusName=bus,
            Targets=[
                {
                    "Id": queue_id(rule.consumer, rule.queue),
                    "Arn": queue_arns[queue_id(rule.consumer, rule.queue)],
                    "DeadLetterConfig": {"Arn": delivery_arns[queue_id(rule.consumer, rule.queue)]},
                    "RetryPolicy": {
                        "MaximumRetryAttempts": retry.maximum_retry_attempts,
                        "MaximumEventAgeInSeconds": retry.maximum_event_age_seconds,
                    },
                }
            ],
        )
        topo.rules.append(name)
    _remove_undeclared_rules(events, bus, env, set(topo.rules))

    for qid, url in topo.queue_urls.items():
        rule_arns = [
            f"{topo.bus_arn.rsplit(':', 1)[0]}:rule/{bus}/{name}"
            for name in rules_by_queue.get(qid, [])
        ]
        for queue_url, queue_arn in (
            (url, queue_arns[qid]),
            (topo.delivery_dlq_urls[qid], delivery_arns[qid]),
        ):
            sqs.set_queue_attributes(
                QueueUrl=queue_url,
                Attributes={"Policy": json.dumps(_queue_policy(queue_arn, rule_arns))},
            )

    topo.bucket = bucket or artifacts_bucket_name(env)
    _bucket(s3, topo.bucket, region, console_origins)
    topo.ws_connections_table = ws_connections_table(env, endpoint_url=endpoint_url, region=region)
    return topo


def seen_from(topology: Topology, endpoint: str, other: str) -> Topology:
    """The same topology with its queue URLs on ``other`` instead of ``endpoint`` (moto names
    a queue by the address it was asked at)."""

    def moved(urls: dict[str, str]) -> dict[str, str]:
        return {
            key: other + url[len(endpoint) :] if url.startswith(f"{endpoint}/") else url
            for key, url in urls.items()
        }

    return replace(
        topology,
        queue_urls=moved(topology.queue_urls),
        dlq_urls=moved(topology.dlq_urls),
        delivery_dlq_urls=moved(topology.delivery_dlq_urls),
    )


class TopologyMissing(RuntimeError):
    """The topology the stack was told exists (RELAY_STACK_BOOTSTRAP=false) is incomplete."""


def existing_topology(
    env: str,
    *,
    endpoint_url: str | None,
    region: str = "us-east-1",
    routing: Routing | None = None,
    bucket: str | None = None,
) -> Topology:
    """The topology someone else built (Terraform's envs/local), read and checked, not changed:
    every queue and DLQ, the bus, every declared rule with its pattern, and the bucket."""
    routing = routing or load_routing()
    events, sqs, s3 = _clients(endpoint_url, region)
    topo = Topology(env=env, bucket=bucket or artifacts_bucket_name(env))
    missing: list[str] = []

    def url_of(name: str) -> str:
        try:
            url: str = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except ClientError:
            missing.append(f"queue {name}")
            return ""
        return url

    for service, kind in routing.queues():
        qid = queue_id(service, kind)
        topo.queue_urls[qid] = url_of(queue_name(env, service, kind))
        topo.dlq_urls[qid] = url_of(dlq_name(env, service, kind))
        topo.delivery_dlq_urls[qid] = url_of(delivery_dlq_name(env, service, kind))

    bus = bus_name(env)
    try:
        topo.bus_arn = events.describe_event_bus(Name=bus)["Arn"]
    except ClientError:
        missing.append(f"event bus {bus}")
    else:
        for rule in routing.rules():
            name = rule.name(env)
            try:
                pattern = json.loads(
                    events.describe_rule(Name=name, EventBusName=bus)["EventPattern"]
                )
            except ClientError:
                missing.append(f"rule {name}")
                continue
            if pattern != rule.pattern():
                missing.append(f"rule {name} with the pattern {json.dumps(rule.pattern())}")
                continue
            topo.rules.append(name)

    try:
        s3.head_bucket(Bucket=topo.bucket)
    except ClientError:
        missing.append(f"bucket {topo.bucket}")

    if missing:
        raise TopologyMissing(
            f"RELAY_STACK_BOOTSTRAP=false, but the AWS topology for env {env!r} at "
            f"{endpoint_url} lacks: {', '.join(missing)}.\nApply terraform/envs/local to that "
            "endpoint first, or let the stack bootstrap it (RELAY_STACK_BOOTSTRAP=true)."
        )
    return topo


def _queue_policy(queue_arn: str, rule_arns: list[str]) -> dict[str, Any]:
    """Only our own rules may send to the queue (aws:SourceArn), as in Terraform."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EventBridgeRules",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arns}},
            }
        ],
    }


def _remove_undeclared_rules(events: Any, bus: str, env: str, declared: set[str]) -> None:
    paginator = events.get_paginator("list_rules")
    for page in paginator.paginate(EventBusName=bus, NamePrefix=f"relay-{env}-"):
        for rule in page["Rules"]:
            if rule["Name"] in declared:
                continue
            targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]
            if targets:
                events.remove_targets(
                    Rule=rule["Name"], EventBusName=bus, Ids=[t["Id"] for t in targets]
                )
            events.delete_rule(Name=rule["Name"], EventBusName=bus)


def _bucket(s3: Any, name: str, region: str, console_origins: Sequence[str] = ()) -> None:
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
            raise
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_bucket_lifecycle_configuration(
        Bucket=name,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "expire-unverified-staging",
                    "Filter": {"Prefix": "staging/"},
                    "Status": "Enabled",
                    "Expiration": {"Days": STAGING_EXPIRY_DAYS},
                }
            ]
        },
    )
    if console_origins:
        s3.put_bucket_cors(Bucket=name, CORSConfiguration=console_cors(console_origins))
    else:
        s3.delete_bucket_cors(Bucket=name)


def console_cors(console_origins: Sequence[str]) -> dict[str, Any]:
    """GET and HEAD from the console's origins, with no credentials (a presigned URL carries its
    own signature); the same rule as the artifacts module's in Terraform."""
    return {
        "CORSRules": [
            {
                "ID": "console-reads-artifacts",
                "AllowedMethods": ["GET", "HEAD"],
                "AllowedOrigins": list(console_origins),
                "AllowedHeaders": ["*"],
                "ExposeHeaders": ["Content-Length", "Content-Type", "Content-Disposition", "ETag"],
                "MaxAgeSeconds": CORS_MAX_AGE_SECONDS,
            }
        ]
    }
