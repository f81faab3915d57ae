"""AWS clients (aiobotocore), configured once from settings: region, endpoint, timeouts, retries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore import exceptions as botocore_errors
from botocore.context import get_context
from botocore.exceptions import ClientError
from opentelemetry import metrics

from relay_shared.settings import ServiceSettings

_meter = metrics.get_meter("relay")
AWS_CALLS = _meter.create_counter(
    "relay.aws.calls",
    unit="{call}",
    description="AWS API calls made, by AWS service (rpc.service) and operation (rpc.method).",
)
EVENTS_SENT = _meter.create_counter(
    "relay.aws.events.sent",
    unit="{event}",
    description="Entries handed to EventBridge PutEvents (one call carries up to ten).",
)


def count_call(params: dict[str, Any], model: Any, **_: Any) -> None:
    """A botocore ``before-parameter-build`` hook: once per API call, before any retry."""
    attributes = {"rpc.service": model.service_model.service_name, "rpc.method": model.name}
    AWS_CALLS.add(1, attributes)
    if model.name == "PutEvents":
        EVENTS_SENT.add(len(params.get("Entries") or ()))


@asynccontextmanager
async def aws_client(
    settings: ServiceSettings,
    service: str,
    *,
    read_timeout: float = 30.0,
    endpoint_url: str | None = None,
) -> AsyncIterator[Any]:
    """An aiobotocore client for ``service`` ('events', 'sqs', 's3', ...), closed on exit.

    Credentials come from the standard AWS chain (task role on ECS; env vars locally).
    An SQS client's read timeout always exceeds the consumer's long-poll wait.
    ``endpoint_url`` overrides the settings' endpoint, e.g. to presign URLs for the address
    clients use. S3 always signs with SigV4: botocore would otherwise presign with SigV2,
    which S3 refuses for buckets created since mid-2020.
    """
    endpoint_url = endpoint_url or settings.aws_endpoint_url
    if service == "sqs":  # a long poll must not hit the read timeout
        read_timeout = max(read_timeout, settings.consumer_wait_seconds + 10)
    config = AioConfig(
        region_name=settings.aws_region,
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=5,
        read_timeout=read_timeout,
        max_pool_connections=max(10, settings.consumer_concurrency * 2),
        # moto (and any custom endpoint) is addressed by host:port, not by bucket subdomain
        s3={"addressing_style": "path"} if endpoint_url else None,
        signature_version="s3v4" if service == "s3" else None,
    )
    async with get_session().create_client(
        service, endpoint_url=endpoint_url, config=config
    ) as client:
        client.meta.events.register("before-parameter-build", count_call)
        remember_user_agent(client)
        yield client


def remember_user_agent(client: Any) -> None:
    """Build the client's User-Agent header once per set of SDK features, not twice per call.

    botocore rebuilds the header for every request (once for the request, once more when the
    request is created), sanitising each of its ~15 parts with a regex: ~20 % of botocore's own
    CPU for a call (ADR 0028). The header depends only on the client, which is fixed, and on the
    features the call's context reports (retry mode, checksums, ...), so each distinct set is
    built once, by botocore, and reused."""
    creator = getattr(client, "_user_agent_creator", None)
    if creator is None:  # pragma: no cover - a botocore without it: leave its behaviour
        return
    build = creator.to_string
    built: dict[frozenset[str], str] = {}

    def to_string() -> str:
        context = get_context()
        features = frozenset(context.features) if context is not None else frozenset()
        header = built.get(features)
        if header is None:
            header = built[features] = build()
        return header

    creator.to_string = to_string


async def queue_url(sqs: Any, queue_name: str) -> str:
    response = await sqs.get_queue_url(QueueName=queue_name)
    url: str = response["QueueUrl"]
    return url


# connection refused or reset, timeouts
NO_ANSWER = (botocore_errors.ConnectionError, botocore_errors.HTTPClientError, OSError)
_MISSING = ("NonExistent", "NotFound", "DoesNotExist", "NoSuch")
_THROTTLED = frozenset({"Throttling", "ThrottlingException", "RequestThrottled", "SlowDown"})


def is_unreachable(exc: BaseException) -> bool:
    """Whether a failed AWS call got no usable answer: connection errors, timeouts, a server
    error or throttling. Worth trying again later, whatever the request."""
    if isinstance(exc, NO_ANSWER):
        return True
    if not isinstance(exc, ClientError):
        return False  # e.g. a parameter the client refused before sending: a bug, not an outage
    code, status = _error(exc)
    return status >= 500 or code in _THROTTLED


def is_outage(exc: BaseException) -> bool:
    """Whether a failed AWS call says the service is unusable: unreachable, or its queue, bus
    or bucket is missing (e.g. a restarted emulator not yet bootstrapped). A refused request
    (an expired receipt handle, a bad checksum) says the endpoint works."""
    if is_unreachable(exc):
        return True
    return isinstance(exc, ClientError) and any(word in _error(exc)[0] for word in _MISSING)


def _error(exc: ClientError) -> tuple[str, int]:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status
