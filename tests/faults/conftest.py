"""The fault suite: the real stack (`relay up`), real process kills, checks through the public
API and the queues. Run with `make test-faults`; CI runs it too."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from relay_devkit.api_client import PublicApi
from relay_devkit.testing import fresh_database
from relay_ops.stack.process import RunningStack, running_stack

# Short timeouts so a killed worker's message and lease come back in seconds, not minutes, and
# a restart policy of a container runtime that restarts at once. The visibility timeout stays
# well below the crash run's kill period (a restart, ~2-6 s, then 5-8 s up): a killed worker's
# messages come back early in its successor's life. At 10 s they came back when the successor
# was about to be killed too, and on a loaded machine the same few messages were caught by kill
# after kill until SQS dead-lettered them (ten receives).
FAST_RECOVERY = {
    "RELAY_CONSUMER_VISIBILITY_TIMEOUT": "6",
    "RELAY_RUN_LEASE_SECONDS": "4",
    "RELAY_SHUTDOWN_GRACE_SECONDS": "5",
    "RELAY_STACK_RESTART_MAX_SECONDS": "1",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in str(item.fspath):
            item.add_marker(pytest.mark.faults)


@pytest.fixture(scope="module")
def fault_stack(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory, aws_credentials: None
) -> Iterator[RunningStack]:
    """A stack of its own per test module: faults in one module never leak into the next."""
    with (
        fresh_database() as database_url,
        running_stack(
            database_url, redis_url, tmp_path_factory.mktemp("fault-stack"), **FAST_RECOVERY
        ) as up,
    ):
        yield up


@pytest.fixture
async def api(fault_stack: RunningStack) -> AsyncIterator[PublicApi]:
    key = fault_stack.create_key("faults")
    fault_stack.unthrottle("faults")  # a fault run is a load test, not a test of the limits
    client = PublicApi(fault_stack.gateway_url, key)
    yield client
    await client.aclose()
