"""The Python client (clients/python, relay_client) against the real `relay up`: every call
goes through the public API of the session's stack, as a user's program would."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest

from relay_client import (
    Artifact,
    AsyncRelay,
    ChecksumMismatchError,
    ConflictError,
    NotFoundError,
    Relay,
    Task,
    TimelineEvent,
    UnprocessableEntityError,
    WebhookVerificationError,
    verify_webhook,
)
from relay_devkit.receiver import serve_receiver
from relay_devkit.testing import TcpProxy
from relay_ops.stack.process import RunningStack

pytestmark = pytest.mark.e2e


@pytest.fixture
async def relay(stack: RunningStack, api_key: str) -> AsyncIterator[AsyncRelay]:
    async with AsyncRelay(stack.gateway_url, api_key) as client:
        yield client


async def test_create_get_and_list_every_page_newest_first(relay: AsyncRelay) -> None:
    batch = uuid.uuid4().hex[:8]
    created = [
        await relay.tasks.create(f"Listed {n}.", metadata={"batch": batch}) for n in range(5)
    ]
    got = await relay.tasks.get(created[0].id)
    assert (got.id, got.prompt, got.metadata) == (created[0].id, "Listed 0.", {"batch": batch})

    listed = [task async for task in relay.tasks.list(page_size=2)]  # three pages or more
    ids = [task.id for task in listed]
    assert len(ids) == len(set(ids)), "a task came twice across pages"
    mine = [task.id for task in listed if task.metadata.get("batch") == batch]
    assert mine == [task.id for task in reversed(created)]  # newest first

    page = await relay.tasks.list_page(limit=2)
    assert len(page.items) == 2
    assert page.next_cursor is not None


async def test_a_create_retried_with_its_key_makes_one_task_and_another_body_is_refused(
    relay: AsyncRelay,
) -> None:
    key = str(uuid.uuid4())
    first = await relay.tasks.create("Once.", idempotency_key=key)
    again = await relay.tasks.create("Once.", idempotency_key=key)
    assert again.id == first.id

    with pytest.raises(UnprocessableEntityError) as refused:
        await relay.tasks.create("Something else.", idempotency_key=key)
    assert refused.value.problem is not None
    assert refused.value.problem.title == "Idempotency key reused"
    assert "use a new key" in str(refused.value)


async def test_events_resume_after_a_dropped_connection_with_no_gap_and_no_repeat(
    stack: RunningStack, api_key: str
) -> None:
    async with (
        TcpProxy(urlsplit(stack.gateway_url).netloc) as proxy,
        AsyncRelay(f"http://{proxy.address}", api_key) as relay,
    ):
        task = await relay.tasks.create("Across a drop.\n/steps 8\n/sleep 0.3")
        seen: list[TimelineEvent] = []
        drops = 0
        async for event in relay.tasks.events(task.id):
            seen.append(event)
            if len(seen) in (2, 5):  # twice, mid-stream: the connection is reset
                await proxy.drop_connections()
                drops += 1

    assert drops == 2
    seqs = [event.seq for event in seen]
    assert seqs == list(range(1, len(seqs) + 1))
    assert seen[-1].type == "task.succeeded"
    async with AsyncRelay(stack.gateway_url, api_key) as direct:
        whole = [event async for event in direct.tasks.events(task.id)]
    assert [(e.seq, e.type, e.event_id) for e in whole] == [
        (e.seq, e.type, e.event_id) for e in seen
    ]


async def test_wait_then_download_checked_and_a_tampered_object_refused(
    relay: AsyncRelay, stack: RunningStack, tmp_path: Path
) -> None:
    task = await relay.tasks.create("A report.\n/steps 2\n/artifact report.md")
    done = await relay.tasks.wait(task.id, timeout=60)
    assert done.status == "succeeded"
    assert done.finished_at is not None

    artifacts = await _listed(relay, done.id, 1)
    artifact = artifacts[0]
    path = await relay.artifacts.download(done.id, artifact.id, tmp_path)
    assert path == tmp_path / "report.md"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == artifact.sha256
    assert await relay.artifacts.read(done.id, artifact.id) == path.read_bytes()

    # the object changes under its record: the download refuses it and leaves nothing behind
    location = urlsplit((await relay.artifacts.get(done.id, artifact.id)).download_url)
    bucket, _, key = location.path.lstrip("/").partition("/")
    s3 = boto3.client("s3", endpoint_url=stack.config.moto_endpoint, region_name="us-east-1")
    await asyncio.to_thread(s3.put_object, Bucket=bucket, Key=key, Body=b"not the report")
    target = tmp_path / "tampered"
    target.mkdir()
    with pytest.raises(ChecksumMismatchError, match=r"report\.md"):
        await relay.artifacts.download(done.id, artifact.id, target)
    assert list(target.iterdir()) == []


async def test_cancel_a_long_task_and_wait_for_it(relay: AsyncRelay) -> None:
    task = await relay.tasks.create("Long.\n/steps 40\n/sleep 0.5")
    async for event in relay.tasks.events(task.id):
        if event.type == "task.progressed":
            break
    await relay.tasks.cancel(task.id, reason="changed my mind")
    done = await relay.tasks.wait(task.id, timeout=60)
    assert done.status == "cancelled"


async def test_errors_carry_the_problem_and_another_tenants_task_is_not_found(
    relay: AsyncRelay, stack: RunningStack, other_api_key: str
) -> None:
    with pytest.raises(NotFoundError) as missing:
        await relay.tasks.get(uuid.uuid4())
    assert missing.value.problem is not None
    assert missing.value.problem.status == 404

    task = await relay.tasks.create("Mine only.")
    async with AsyncRelay(stack.gateway_url, other_api_key) as theirs:
        with pytest.raises(NotFoundError):
            await theirs.tasks.get(task.id)
        with pytest.raises(NotFoundError):
            await theirs.tasks.cancel(task.id)

    with pytest.raises(UnprocessableEntityError) as invalid:
        await relay.tasks.create("Bad limits.", limits={"max_turns": 0})
    assert "limits.max_turns" in str(invalid.value)  # the message says what to fix


async def test_a_question_is_answered_and_the_task_carries_on_with_the_answer(
    relay: AsyncRelay, stack: RunningStack, api_key: str
) -> None:
    task = await relay.tasks.create("Pick a region\n/ask Which region?\n/steps 1")
    async for event in relay.tasks.events(task.id):
        if event.type == "task.input_requested":
            break  # the iterator is left here: the task waits, and the stream would wait too
    assert event.data["question"] == "Which region?"
    waiting = await _waiting(relay, task.id)
    assert waiting.question is not None
    assert waiting.question.text == "Which region?"
    assert str(waiting.question.id) == event.data["question_id"]
    assert waiting.id in [t.id async for t in relay.tasks.list(status="waiting_for_input")]

    answered = await relay.tasks.input(task.id, "eu-west-1", question_id=waiting.question.id)
    assert answered.status == "running"
    assert answered.question is None
    done = await relay.tasks.wait(task.id, timeout=60)
    assert done.status == "succeeded"
    assert done.result is not None
    assert "eu-west-1" in done.result.summary

    # the timeline has it all, and the events iterator took the new types as they came
    kinds = [(e.type, e.data) async for e in relay.tasks.events(task.id)]
    provided = [data for kind, data in kinds if kind == "task.input_provided"]
    assert provided == [{"question_id": str(waiting.question.id), "text": "eu-west-1"}]
    resumed = [data["resumed"] for kind, data in kinds if kind == "task.started"][-1]
    assert resumed["question_id"] == str(waiting.question.id)

    # a second answer to the same question: 409 with the problem, from either client
    with pytest.raises(ConflictError) as again:
        await relay.tasks.input(task.id, "us-east-1", question_id=waiting.question.id)
    assert again.value.problem is not None
    assert again.value.problem.status == 409
    assert again.value.status_code == 409

    def blocking() -> None:
        with Relay(stack.gateway_url, api_key) as client, pytest.raises(ConflictError):
            client.tasks.input(task.id, "us-east-1")

    await asyncio.to_thread(blocking)
    assert (await relay.tasks.get(task.id)).result == done.result  # nothing changed


async def _waiting(relay: AsyncRelay, task_id: uuid.UUID, *, within: float = 15) -> Task:
    """The task once its record says it waits for input (the tasks service applies the
    question from its own queue, a moment after the timeline shows it)."""
    deadline = asyncio.get_running_loop().time() + within
    while (task := await relay.tasks.get(task_id)).status != "waiting_for_input":
        assert asyncio.get_running_loop().time() < deadline, f"still {task.status}"
        await asyncio.sleep(0.1)
    return task


async def test_webhooks_made_with_the_client_verify_with_its_secret(relay: AsyncRelay) -> None:
    async with serve_receiver() as receiver:
        path = f"/ok/client-{uuid.uuid4().hex[:6]}"
        endpoint = await relay.webhooks.create(receiver.url + path, description="client test")
        assert endpoint.secret.startswith("whsec_")
        assert endpoint.id in [e.id for e in await relay.webhooks.list()]

        task = await relay.tasks.create("Hooked.\n/steps 1")
        await relay.tasks.wait(task.id, timeout=60)
        # the endpoint takes every task of the tenant: earlier tests' tasks may still be
        # finishing, so wait for this task's terminal event among whatever arrives
        deliveries = await receiver.settled(path, 1)
        while True:
            events = [verify_webhook(d.body, d.headers, endpoint.secret) for d in deliveries]
            if {"type": "task.succeeded", "task_id": str(task.id)} in [
                {"type": e["type"], "task_id": e["task_id"]} for e in events
            ]:
                break
            deliveries = await receiver.settled(path, len(deliveries) + 1)
        with pytest.raises(WebhookVerificationError):
            verify_webhook(deliveries[0].body + b" ", deliveries[0].headers, endpoint.secret)

        tested = await relay.webhooks.test(endpoint.id)
        await receiver.settled(path, len(deliveries) + 1)
        listed = [d async for d in relay.webhooks.deliveries(endpoint.id, page_size=1)]
        assert tested.event_id in [d.event_id for d in listed]
        updated = await relay.webhooks.update(endpoint.id, enabled=False)
        assert updated.enabled is False
        await relay.webhooks.delete(endpoint.id)
        with pytest.raises(NotFoundError):
            await relay.webhooks.get(endpoint.id)


async def test_the_blocking_client_does_the_same(stack: RunningStack, api_key: str) -> None:
    def run() -> tuple[bool, list[int], str]:
        with Relay(stack.gateway_url, api_key) as relay:
            task = relay.tasks.create("Blocking.\n/steps 2", metadata={"kind": "blocking"})
            seqs = [event.seq for event in relay.tasks.events(task.id)]
            done = relay.tasks.wait(task.id, timeout=60)
            listed = any(t.id == task.id for t in relay.tasks.list(status="succeeded"))
            return listed, seqs, done.status

    listed, seqs, status = await asyncio.to_thread(run)
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(seqs) >= 4
    assert status == "succeeded"
    assert listed


async def _listed(relay: AsyncRelay, task_id: uuid.UUID, count: int) -> list[Artifact]:
    """The task's artifacts once ``count`` are listed (recorded from the artifacts service's own
    queue, a moment after the terminal event)."""
    for _ in range(100):
        artifacts = await relay.artifacts.list(task_id)
        if len(artifacts) >= count:
            return list(artifacts)
        await asyncio.sleep(0.1)
    raise AssertionError(f"{count} artifacts were not listed")
