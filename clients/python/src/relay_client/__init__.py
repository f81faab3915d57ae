"""Python client for Relay: ``Relay`` (blocking) and ``AsyncRelay`` (asyncio).

from relay_client import Relay

with Relay() as relay:  # RELAY_URL, RELAY_API_KEY
    task = relay.tasks.create("Summarise the report.", metadata={"ticket": "T-1"})
    for event in relay.tasks.events(task.id):
        print(event.seq, event.type)
    print(relay.tasks.get(task.id).status)
"""

from relay_client._async_client import AsyncRelay
from relay_client._client import Relay
from relay_client.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ChecksumMismatchError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    RelayError,
    ServiceUnavailableError,
    UnprocessableEntityError,
    WebhookVerificationError,
)
from relay_client.models import (
    Artifact,
    ArtifactDownload,
    NewTaskLimits,
    ProblemDetails,
    Task,
    TaskError,
    TaskLimits,
    TaskPage,
    TaskQuestion,
    TaskResult,
    TimelineEvent,
    Usage,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointWithSecret,
    WebhookSecret,
)
from relay_client.webhooks import verify_webhook

Question = TaskQuestion  # the name the README uses; TaskQuestion is the OpenAPI component's

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "Artifact",
    "ArtifactDownload",
    "AsyncRelay",
    "AuthenticationError",
    "BadRequestError",
    "ChecksumMismatchError",
    "ConflictError",
    "InternalServerError",
    "NewTaskLimits",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "ProblemDetails",
    "Question",
    "RateLimitError",
    "Relay",
    "RelayError",
    "ServiceUnavailableError",
    "Task",
    "TaskError",
    "TaskLimits",
    "TaskPage",
    "TaskQuestion",
    "TaskResult",
    "TimelineEvent",
    "UnprocessableEntityError",
    "Usage",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEndpointWithSecret",
    "WebhookSecret",
    "WebhookVerificationError",
    "verify_webhook",
]
