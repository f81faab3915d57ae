"""Redelivery safety against real PostgreSQL and moto: a task delivered twice runs once, a run
whose holder died is taken over as the next attempt, a finished one is never re-run."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter

import pytest

from agent.providers.base import ModelReply, ModelRequest
from agent.providers.scripted import ScriptedProvider
from agent.repository import PostgresRuns
from relay_devkit.testing import eventually
from relay_shared.aws import aws_client
from relay_shared.consumer import Defer
from relay_shared.events import TaskLimits, TaskSubmitted, TaskSubmittedData

from .conftest import eventbridge_body

pytestmark = pytest.mark.integration


def _submitted(prompt: str, *, wall: float = 60) -> TaskSubmitted:
    limits = TaskLimits(max_turns=10, max_output_tokens=10_000, max_wall_seconds=wall)
    return TaskSubmitted.create(
        TaskSubmittedData(prompt=prompt, model="scripted", limits=limits),
        tenant_id="acme",
        task_id=uuid.uuid4(),
    )


class GatedProvider:
    """The scripted model, counting calls; the first call waits until the test opens the gate."""

    def __init__(self, gate: asyncio.Event) -> None:
        self._gate = gate
        self._inner = ScriptedProvider()
        self.calls = 0

    async def complete(self, request: ModelRequest) -> ModelReply:
        self.calls += 1
        await self._gate.wait()
        return await self._inner.complete(request)


async def test_the_same_task_delivered_twice_runs_once(
    runtime, serving, publish, queue_depth, topology, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="relay_shared.consumer")
    gate = asyncio.Event()
    first, second = GatedProvider(gate), GatedProvider(gate)
    event = _submitted("Once only\n/steps 2", wall=6)
    async with (
        serving(first, worker_id="agent-a", run_lease_seconds=2),
        serving(second, worker_id="agent-b", run_lease_seconds=2),
        aws_client(runtime.settings, "sqs") as sqs,
    ):
        await publish(event)
        await eventually(lambda: _calls(first, second), until=lambda n: n == 1, within=30)

        # the same task.submitted again (a duplicate delivery) while the first one runs
        await sqs.send_message(
            QueueUrl=topology.queue_urls["agent"], MessageBody=eventbridge_body(event)
        )
        await eventually(lambda: _deferrals(caplog), until=lambda n: n >= 1, within=15)
        # both kept: the first in flight, the deferred one sent again with a delay and its
        # delivered copy deleted (the delete may linger to share a batch call)
        await eventually(queue_depth, until=lambda depth: depth == (0, 2), within=5)

        gate.set()
        await eventually(
            lambda: runtime.run_row(event.metadata.task_id),
            until=lambda run: run["status"] == "succeeded",
            within=15,
        )
        # the deferred delivery comes back once the holder must be done, finds the run
        # finished and is acknowledged without calling the model
        await eventually(queue_depth, until=lambda depth: depth == (0, 0), within=30)

    assert first.calls + second.calls == 3  # one run of /steps 2: three model calls
    assert Counter(await runtime.emitted()) == {
        "task.started": 1,
        "task.progressed": 2,
        "artifact.uploaded": 1,
        "task.succeeded": 1,
    }


async def _calls(*providers: GatedProvider) -> int:
    return sum(p.calls for p in providers)


async def _deferrals(caplog) -> int:
    return sum("deferred" in r.getMessage() for r in caplog.records)


async def test_a_run_whose_holder_died_is_taken_over_once_its_lease_expires(
    runtime, counting
) -> None:
    provider = counting()
    service = runtime.service(provider)
    event = _submitted("Take over\n/steps 1")
    async with PostgresRuns(runtime.database).transaction() as tx:  # a worker that then died
        await tx.claim(
            event.metadata.task_id,
            "acme",
            worker_id="dead-worker",
            lease_seconds=30,
            wall_seconds=60,
            submitted=event.data.model_dump(mode="json"),
        )

    with pytest.raises(Defer) as deferred:  # its lease is still live
        await service.runner.run(event)
    assert 60 <= deferred.value.delay_seconds <= 63
    assert provider.calls == 0

    await runtime.execute(
        "UPDATE runs SET lease_expires_at = now() - interval '1 second' WHERE task_id = %s",
        event.metadata.task_id,
    )
    await service.runner.run(event)

    rows = await runtime.outbox()
    assert [r["detail_type"] for r in rows] == [
        "task.started",
        "task.progressed",
        "artifact.uploaded",
        "task.succeeded",
    ]
    assert rows[0]["detail"]["data"]["attempt"] == 2
    run = await runtime.run_row(event.metadata.task_id)
    assert run is not None
    assert (run["status"], run["attempt"], run["lease_owner"]) == ("succeeded", 2, "it-worker")
    assert run["submitted"]["prompt"] == "Take over\n/steps 1"

    await service.runner.run(event)  # and once finished, never again
    assert provider.calls == 2
