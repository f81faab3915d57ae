"""`make tf-local-smoke`: terraform/envs/local applied to a moto server builds the topology the
local bootstrap builds, and the whole local stack runs a task on it without bootstrapping. Beside
it, envs/local with edge = "apigateway" declares the serverless edge on a moto server of its
own: the gateway's Lambda functions, its HTTP and WebSocket APIs, which moto keeps but does not
run, and the WebSocket connections table, which the notifier's own store then uses.

Why another moto: once moto holds a Lambda function, its /moto-api/data.json (which `relay up`
polls to see moto is up) answers 500 where there is no Docker, as it reads every attribute of
every model, the function's Docker client included. That apply runs while the stack runs a task.

Slow (the AWS provider waits for SQS attributes to settle, ~25 s per queue generation), so it is
marked `tf` and kept out of `make test`."""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from aiobotocore.session import get_session

from notifier.edge_aws import DynamoEdgeConnections
from notifier.ports import EdgeCursor
from relay_devkit.api_client import PublicApi
from relay_ops.routing import bus_name, delivery_dlq_name, dlq_name, load_routing, queue_name
from relay_ops.stack.config import StackConfig
from relay_ops.stack.moto import free_port, start_moto, wait_until_up
from relay_ops.stack.process import running_stack
from relay_ops.stack.topology import artifacts_bucket_name, bootstrap, ws_connections_table_name

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


class ServerlessEdgeApply:
    """envs/local with edge = "apigateway", its serverless edge only (-target), applied in the
    background to a moto server of its own."""

    def __init__(self, terraform: Terraform, local: Path, workdir: Path) -> None:
        port = free_port()
        self.env = f"edge{uuid.uuid4().hex[:8]}"
        self.endpoint = f"http://127.0.0.1:{port}"
        self.log = workdir / "apply.log"
        self.moto = start_moto(port)
        self.apply: subprocess.Popen[bytes] | None = None
        try:
            wait_until_up(self.endpoint)
            with self.log.open("wb") as out:
                self.apply = subprocess.Popen(
                    [
                        terraform.binary,
                        "apply",
                        "-auto-approve",
                        "-input=false",
                        "-lock=false",
                        f"-state={workdir / 'terraform.tfstate'}",
                        f"-var=endpoint={self.endpoint}",
                        f"-var=env={self.env}",
                        "-var=edge=apigateway",
                        "-target=module.serverless_edge",
                        "-no-color",
                    ],
                    cwd=local,
                    env=dict(terraform.env),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
        except BaseException:
            self.close()
            raise

    def wait(self, timeout: float = 600) -> None:
        assert self.apply is not None
        returncode = self.apply.wait(timeout=timeout)
        assert returncode == 0, (
            f"terraform apply (edge) exited {returncode}:\n" + (self.log.read_text()[-4000:])
        )

    def close(self) -> None:
        for process in (self.apply, self.moto):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=30)


@pytest.fixture
def serverless_edge(
    terraform: Terraform, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[Path], ServerlessEdgeApply]]:
    """Starts ServerlessEdgeApply; stops its apply (if still running) and its moto at teardown."""
    started: list[ServerlessEdgeApply] = []

    def start(local: Path) -> ServerlessEdgeApply:
        started.append(ServerlessEdgeApply(terraform, local, tmp_path_factory.mktemp("tf-edge")))
        return started[-1]

    yield start
    for edge in started:
        edge.close()


def check_serverless_edge(endpoint: str, env: str) -> None:
    """The HTTP API sends every path to the gateway function, which is told its secrets only as
    references (RELAY_LAMBDA_SECRETS) to secrets that exist, never their values; the WebSocket
    API sends $connect (behind the REQUEST authorizer), $disconnect and $default to the gateway's
    WebSocket function, from the same image with the same environment."""
    kw: dict[str, Any] = {"endpoint_url": endpoint, "region_name": "us-east-1"}
    services = ("apigatewayv2", "lambda", "secretsmanager")
    apigw, lambda_, secrets = (boto3.client(service, **kw) for service in services)
    apis = {a["Name"]: a for a in apigw.get_apis()["Items"]}

    api = apis[f"relay-{env}-http"]
    assert api["ProtocolType"] == "HTTP"
    [route] = apigw.get_routes(ApiId=api["ApiId"])["Items"]
    assert route["RouteKey"] == "$default"
    [integration] = apigw.get_integrations(ApiId=api["ApiId"])["Items"]
    assert route["Target"] == f"integrations/{integration['IntegrationId']}"
    assert integration["IntegrationType"] == "AWS_PROXY"
    assert integration["PayloadFormatVersion"] == "2.0"
    assert integration["TimeoutInMillis"] <= 29000
    [stage] = apigw.get_stages(ApiId=api["ApiId"])["Items"]
    assert (stage["StageName"], stage["AutoDeploy"]) == ("$default", True)
    assert stage["AccessLogSettings"]["DestinationArn"].endswith(f":/relay/{env}/http-api-access")
    assert set(json.loads(stage["AccessLogSettings"]["Format"])) >= {"requestId", "ip", "status"}
    assert stage["DefaultRouteSettings"]["ThrottlingBurstLimit"] > 0

    name = f"relay-{env}-gateway"
    function = _check_gateway_function(lambda_, secrets, name, "gateway.lambda_http.handler", env)
    assert function["FunctionArn"] in integration["IntegrationUri"]
    [permission] = json.loads(lambda_.get_policy(FunctionName=name)["Policy"])["Statement"]
    assert permission["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert f":{api['ApiId']}/" in permission["Condition"]["ArnLike"]["AWS:SourceArn"]

    ws = apis[f"relay-{env}-ws"]
    assert ws["ProtocolType"] == "WEBSOCKET"
    ws_name = f"relay-{env}-gateway-ws"
    ws_function = _check_gateway_function(
        lambda_, secrets, ws_name, "gateway.lambda_ws.handler", env
    )
    routes = {r["RouteKey"]: r for r in apigw.get_routes(ApiId=ws["ApiId"])["Items"]}
    assert set(routes) == {"$connect", "$disconnect", "$default"}
    # (moto has no GetAuthorizers: the one $connect names)
    authorizer = apigw.get_authorizer(
        ApiId=ws["ApiId"], AuthorizerId=routes["$connect"]["AuthorizerId"]
    )
    assert authorizer["AuthorizerType"] == "REQUEST"
    assert ws_function["FunctionArn"] in authorizer["AuthorizerUri"]
    assert not authorizer.get("IdentitySource")  # a key or a ticket: neither is required
    [ws_integration] = apigw.get_integrations(ApiId=ws["ApiId"])["Items"]
    assert ws_integration["IntegrationType"] == "AWS_PROXY"
    assert ws_function["FunctionArn"] in ws_integration["IntegrationUri"]
    for key, ws_route in routes.items():
        assert ws_route["Target"] == f"integrations/{ws_integration['IntegrationId']}"
        authorised = (ws_route.get("AuthorizationType"), ws_route.get("AuthorizerId"))
        expected = ("CUSTOM", authorizer["AuthorizerId"]) if key == "$connect" else ("NONE", None)
        assert authorised == expected, key
    [ws_stage] = apigw.get_stages(ApiId=ws["ApiId"])["Items"]
    assert (ws_stage["StageName"], ws_stage["AutoDeploy"]) == ("live", True)
    assert ws_stage["AccessLogSettings"]["DestinationArn"].endswith(f":/relay/{env}/ws-api-access")
    ws_log = ws_stage["AccessLogSettings"]["Format"]
    assert set(json.loads(ws_log)) >= {"requestId", "connectionId", "eventType", "status"}
    assert "header" not in ws_log.lower()
    assert "querystring" not in ws_log.lower()
    assert ws_stage["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0
    [ws_permission] = json.loads(lambda_.get_policy(FunctionName=ws_name)["Policy"])["Statement"]
    assert ws_permission["Condition"]["ArnLike"]["AWS:SourceArn"].endswith(f":{ws['ApiId']}/*")


def _check_gateway_function(
    lambda_: Any, secrets: Any, name: str, handler: str, env: str
) -> dict[str, Any]:
    function: dict[str, Any] = lambda_.get_function(FunctionName=name)["Configuration"]
    assert function["PackageType"] == "Image"
    assert function["ImageConfigResponse"]["ImageConfig"] == {
        "EntryPoint": ["/app/.venv/bin/python", "-m", "awslambdaric"],
        "Command": [handler],
        "WorkingDirectory": "/app",
    }
    assert function["TracingConfig"]["Mode"] == "Active"
    assert len(function["VpcConfig"]["SubnetIds"]) == 2
    assert function["KMSKeyArn"]
    variables = function["Environment"]["Variables"]
    references = json.loads(variables.pop("RELAY_LAMBDA_SECRETS"))
    assert set(references) == {"PGPASSWORD", "RELAY_INTERNAL_AUTH_PRIVATE_KEY"}
    assert not set(references) & set(variables)  # no secret in a plain variable
    assert references["PGPASSWORD"].endswith(":password::")
    for reference in references.values():
        arn = reference.removesuffix(":password::")
        secret = secrets.describe_secret(SecretId=arn)
        assert secret["ARN"] == arn
        assert secret["Name"].startswith(f"relay/{env}/")
    assert variables["RELAY_ENV"] == env
    return function


async def check_connections_table(endpoint: str, env: str) -> None:
    """The table Terraform declares is the one the notifier's code reads and writes: encrypted
    with its own key, recoverable, items expiring; a connection, a subscription to a task and one
    to all of a tenant's tasks are found again through the two indexes."""
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    table = ws_connections_table_name(env)
    described = dynamodb.describe_table(TableName=table)["Table"]
    assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert described["SSEDescription"]["SSEType"] == "KMS"
    assert described["SSEDescription"]["KMSMasterKeyArn"]
    backups = dynamodb.describe_continuous_backups(TableName=table)
    recovery = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert recovery["PointInTimeRecoveryStatus"] == "ENABLED"
    ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert (ttl["AttributeName"], ttl["TimeToLiveStatus"]) == ("expires_at", "ENABLED")

    later = datetime.now(UTC) + timedelta(hours=2)
    task = uuid.uuid4()
    async with get_session().create_client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ) as client:
        store = DynamoEdgeConnections(client, table)
        await store.add_connection("c1", "acme", expires_at=later)
        cursor = EdgeCursor(connection_id="c1", tenant_id="acme", task_id=task, after=0)
        assert await store.add_cursor(cursor, expires_at=later)
        assert await store.add_all_tasks("c1", "acme", later)
        assert await store.tenant_of("c1") == "acme"
        assert [c.connection_id for c in await store.cursors_of_task(task)] == ["c1"]
        assert await store.following_all("acme") == ["c1"]
        await store.remove_connection("c1")
        assert await store.tenant_of("c1") is None
        assert await store.cursors_of_task(task) == []


async def test_terraform_local_builds_the_bootstrap_topology_and_the_stack_runs_a_task_on_it(
    terraform: Terraform,
    moto_endpoint: str,
    database_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    serverless_edge: Callable[[Path], ServerlessEdgeApply],
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
    # 3., started now: the serverless edge on a moto of its own, while the stack runs (below)
    edge = serverless_edge(local)

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

    # 3. The serverless edge: both APIs, their routes and stages, the functions, the table.
    edge.wait()
    check_serverless_edge(edge.endpoint, edge.env)
    await check_connections_table(edge.endpoint, edge.env)
