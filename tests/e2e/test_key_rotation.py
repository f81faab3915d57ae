"""The internal signing key rotated on a running stack, as docs/operations.md says to, while a
client keeps calling: not one call fails. Each step is confirmed from the services' own logs
(the key ids they trust, the key the gateway signs with), and the last one drops the old key,
so the calls after it can only pass if the gateway signs with the new one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import boto3
import pytest

from relay_devkit.api_client import PublicApi
from relay_ops.stack.process import RunningStack
from relay_ops.stack.topology import jwks_secret_name, signing_key_secret_name
from relay_shared.internal_auth import generate_keypair, jwks, key_id, parse_public_keys

pytestmark = pytest.mark.timeout(180)

VERIFIERS = ("tasks", "notifier", "artifacts")


def _secrets(stack: RunningStack) -> Any:
    return boto3.client(
        "secretsmanager", endpoint_url=stack.moto_endpoint, region_name=stack.config.aws_region
    )


def _logged(stack: RunningStack, service: str, text: str) -> bool:
    path = stack.config.log_dir / f"{service}.log"
    return path.exists() and text in path.read_text()


async def _until_logged(stack: RunningStack, services: tuple[str, ...], text: str) -> None:
    deadline = time.monotonic() + 60
    while not all(_logged(stack, service, text) for service in services):
        assert time.monotonic() < deadline, f"{services} never logged {text!r}"
        await asyncio.sleep(0.2)


@pytest.fixture
async def api(stack: RunningStack) -> AsyncIterator[PublicApi]:
    """A tenant of its own without rate limits: the client below calls as fast as it can, and
    a 429 would hide what this test looks for."""
    tenant = f"rotation-{uuid.uuid4().hex[:6]}"
    key = stack.create_key(tenant)
    stack.unthrottle(tenant)
    client = PublicApi(stack.gateway_url, key)
    yield client
    await client.aclose()


async def test_the_signing_key_rotates_with_no_failed_call(
    stack: RunningStack, api: PublicApi
) -> None:
    secrets = _secrets(stack)
    jwks_secret, signing_secret = (
        name(stack.config.env) for name in (jwks_secret_name, signing_key_secret_name)
    )
    published = secrets.get_secret_value(SecretId=jwks_secret)["SecretString"]
    [old_kid] = parse_public_keys(published)
    [old_public] = [entry["x"] for entry in json.loads(published)["keys"]]
    assert key_id(old_public) == old_kid
    new_private, new_public = generate_keypair()
    new_kid = key_id(new_public)
    task = await api.submit("/steps 1")

    answers: Counter[int] = Counter()
    stop = asyncio.Event()

    async def keep_calling() -> None:
        # every call crosses the gateway -> tasks (and artifacts) with a fresh internal token
        while not stop.is_set():
            for path in (
                "/v1/tasks",
                f"/v1/tasks/{task['id']}",
                f"/v1/tasks/{task['id']}/artifacts",
            ):
                answers[(await api.http.get(path)).status_code] += 1

    caller = asyncio.create_task(keep_calling())
    try:
        # 1. publish the new public key beside the old one; every verifier picks it up
        secrets.put_secret_value(SecretId=jwks_secret, SecretString=jwks(old_public, new_public))
        await _until_logged(stack, VERIFIERS, new_kid)
        # 2. switch the gateway's signing key
        secrets.put_secret_value(SecretId=signing_secret, SecretString=new_private)
        await _until_logged(stack, ("gateway",), f"signing with key {new_kid}")
        # 3. tokens are minted per call, so none signed by the old key is still about: drop it
        secrets.put_secret_value(SecretId=jwks_secret, SecretString=jwks(new_public))
        await _until_logged(stack, VERIFIERS, f"trusting keys ['{new_kid}']")
        before = sum(answers.values())
        await asyncio.sleep(3)  # calls that only the new key can pass
        after = sum(answers.values())
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await caller

    assert set(answers) == {200}, answers
    assert after - before >= 10, (before, after)
    assert (await api.finished_task(task["id"], within=60))["status"] == "succeeded"
