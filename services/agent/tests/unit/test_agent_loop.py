from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest

from agent.app import create_app
from agent.handlers import HANDLERS, event_dispatcher
from agent.providers import UnknownProvider
from agent.providers.base import ModelReply, ProviderError, TextBlock, ToolUseBlock
from agent.providers.scripted import ScriptedProvider
from agent.settings import AgentSettings
from agent.work import SYSTEM_PROMPT
from relay_shared.events import (
    ArtifactUploaded,
    TaskFailed,
    TaskProgressed,
    TaskStarted,
    TaskSucceeded,
    Usage,
)

SUCCEEDED = ["task.started", "task.progressed", "task.progressed", "artifact.uploaded",
             "task.succeeded"]  # fmt: skip


def _leftover_workspaces(settings: AgentSettings) -> list[Path]:
    return list(Path(settings.workspace_root).iterdir())


def _tool_use(name: str, **args: object) -> ModelReply:
    return ModelReply(
        content=[ToolUseBlock(id=f"toolu_{name}", name=name, input=args)],
        stop_reason="tool_use",
        usage=Usage(input_tokens=10, output_tokens=1),
    )


def _end(text: str) -> ModelReply:
    return ModelReply(content=[TextBlock(text=text)], stop_reason="end_turn")


async def test_scripted_run_emits_lifecycle_in_order(
    harness, recording, make_submitted, agent_settings
) -> None:
    provider = recording(ScriptedProvider())
    h = harness(provider)
    event = make_submitted("Write the weekly report\n/steps 2")

    await event_dispatcher(h.service).dispatch(event)

    assert h.runs.names() == SUCCEEDED
    started, step1, step2, uploaded, done = h.runs.events
    assert isinstance(started, TaskStarted)
    assert (started.data.attempt, started.data.worker_id) == (1, "worker-1")
    assert isinstance(uploaded, ArtifactUploaded)
    assert isinstance(step1, TaskProgressed)
    assert isinstance(step2, TaskProgressed)
    assert [(s.data.step, s.data.message) for s in (step1, step2)] == [
        (1, "Ran list_files()"),
        (2, "Ran write_file(result.md)"),
    ]
    # written on the last step, and committed with it: the step first, then its upload
    assert (uploaded.data.attempt, uploaded.data.step) == (1, 2)
    assert h.runs.commits[2] == [step2, uploaded]
    assert step1.data.usage == Usage(input_tokens=110, output_tokens=20)
    assert step2.data.usage == Usage(input_tokens=230, output_tokens=40)
    assert isinstance(done, TaskSucceeded)
    assert done.data.summary == "Completed 2 steps; wrote result.md."
    assert (done.data.attempt, done.data.steps) == (1, 2)
    assert done.data.usage == Usage(input_tokens=360, output_tokens=60)
    assert done.data.artifact_ids == [uploaded.data.artifact_id]

    # every event is caused by the one before; all share the task's correlation id
    causes = [str(event.metadata.event_id)] + [str(e.metadata.event_id) for e in h.runs.events]
    assert [e.metadata.causation_id for e in h.runs.events] == causes[:-1]
    assert {e.metadata.correlation_id for e in h.runs.events} == {event.metadata.correlation_id}
    assert {(e.metadata.tenant_id, e.metadata.task_id) for e in h.runs.events} == {
        ("acme", event.metadata.task_id)
    }

    data, kind, sha = h.staging.objects[uploaded.data.key]
    assert (uploaded.data.size, uploaded.data.sha256) == (
        len(data),
        hashlib.sha256(data).hexdigest(),
    )
    assert (kind, sha) == ("text/markdown", hashlib.sha256(data).digest())
    assert b"Write the weekly report" in data
    assert b"step 2 of 2" in data
    assert uploaded.data.bucket == "relay-test-artifacts"
    assert h.runs.rows[event.metadata.task_id]["status"] == "succeeded"
    assert h.runs.rows[event.metadata.task_id]["steps"] == 2
    assert _leftover_workspaces(agent_settings) == []  # workspace removed


async def test_requests_carry_the_task_tools_and_the_conversation(
    harness, recording, make_submitted
) -> None:
    provider = recording(ScriptedProvider())
    await harness(provider, model_max_tokens=777).service.runner.run(make_submitted("/steps 1"))

    first, second = provider.requests
    assert (first.model, first.max_tokens, first.system) == ("scripted", 777, SYSTEM_PROMPT)
    assert {t.name for t in first.tools} == {"write_file", "read_file", "list_files", "ask_user"}
    assert first.messages == [{"role": "user", "content": "/steps 1"}]
    assert [m["role"] for m in second.messages] == ["user", "assistant", "user"]
    result = second.messages[2]["content"][0]
    assert result["type"] == "tool_result"
    assert result["tool_use_id"] == second.messages[1]["content"][0]["id"]
    assert result["is_error"] is False


async def test_bad_path_becomes_an_error_result_and_the_run_goes_on(
    harness, recording, make_submitted
) -> None:
    provider = recording(
        replies=[_tool_use("write_file", path="../escape.md", content="x"), _end("Gave up.")]
    )
    h = harness(provider)
    await h.service.runner.run(make_submitted())

    assert h.runs.names() == ["task.started", "task.progressed", "task.succeeded"]
    result = provider.requests[1].messages[-1]["content"][0]
    assert result["is_error"] is True
    assert "'..'" in result["content"]
    assert h.staging.objects == {}
    done = h.runs.events[-1]
    assert isinstance(done, TaskSucceeded)
    assert (done.data.summary, done.data.artifact_ids) == ("Gave up.", [])


async def test_provider_error_fails_the_task(harness, recording, make_submitted) -> None:
    h = harness(
        recording(
            replies=[
                _tool_use("write_file", path="draft.md", content="x"),
                ProviderError("invalid_request", "prompt is too long", retryable=False),
            ]
        )
    )
    await h.service.runner.run(make_submitted())

    assert h.runs.names() == [
        "task.started",
        "task.progressed",
        "artifact.uploaded",
        "task.failed",
    ]
    uploaded = h.runs.events[2]
    assert (uploaded.data.attempt, uploaded.data.step) == (1, 1)
    failed = h.runs.events[-1]
    assert isinstance(failed, TaskFailed)
    assert (failed.data.code, failed.data.message, failed.data.steps) == (
        "invalid_request",
        "prompt is too long",
        1,
    )
    assert failed.data.artifact_ids == [uploaded.data.artifact_id]
    assert failed.data.usage == Usage(input_tokens=10, output_tokens=1)


async def test_scripted_fail_and_invalid_directive(harness, make_submitted) -> None:
    h = harness(ScriptedProvider())
    await h.service.runner.run(make_submitted("/steps 1\n/fail boom"))
    await h.service.runner.run(make_submitted("/steps lots"))

    failures = [e for e in h.runs.events if isinstance(e, TaskFailed)]
    assert [(f.data.code, f.data.message) for f in failures] == [
        ("scripted_failure", "boom"),
        ("invalid_directive", "/steps 'lots': expected a whole number"),
    ]
    assert failures[1].data.steps == 0


async def test_default_max_turns_applies_to_a_task_without_limits(
    harness, recording, make_submitted
) -> None:
    provider = recording(replies=[_tool_use("list_files") for _ in range(5)])
    h = harness(provider, default_max_turns=3)
    await h.service.runner.run(make_submitted())

    assert h.runs.names() == ["task.started"] + ["task.progressed"] * 3 + ["task.failed"]
    failed = h.runs.events[-1]
    assert isinstance(failed, TaskFailed)
    assert (failed.data.code, failed.data.budget, failed.data.steps) == (
        "budget_exceeded",
        "max_turns",
        3,
    )
    assert len(provider.requests) == 3


async def test_finished_task_is_never_run_again(harness, recording, make_submitted) -> None:
    provider = recording(ScriptedProvider())
    h = harness(provider)
    event = make_submitted("/steps 1")
    await h.service.runner.run(event)
    calls, events = len(provider.requests), len(h.runs.events)

    await h.service.runner.run(event)

    assert (len(provider.requests), len(h.runs.events)) == (calls, events)


async def test_unexpected_error_leaves_the_run_for_a_fresh_attempt(
    harness, recording, make_submitted, agent_settings
) -> None:
    provider = recording(
        replies=[
            _tool_use("write_file", path="a.md", content="one"),
            RuntimeError("bug"),
            _tool_use("write_file", path="a.md", content="one"),
            _end("ok"),
        ]
    )
    h = harness(provider)
    event = make_submitted()

    with pytest.raises(RuntimeError, match="bug"):
        await h.service.runner.run(event)
    assert h.runs.rows[event.metadata.task_id]["status"] == "running"
    assert _leftover_workspaces(agent_settings) == []
    await h.service.runner.run(event)

    assert h.runs.names() == [
        "task.started",
        "task.progressed",
        "artifact.uploaded",
        "task.started",
        "task.progressed",
        "artifact.uploaded",
        "task.succeeded",
    ]
    first_upload, second_upload = h.runs.events[2], h.runs.events[5]
    assert h.runs.events[3].data.attempt == 2
    assert h.runs.events[-1].data.attempt == 2
    # a re-run writes the same artifact ids, so the artifacts service dedupes them
    assert first_upload.data.artifact_id == second_upload.data.artifact_id
    # each upload names the attempt and step that wrote it
    assert (first_upload.data.attempt, first_upload.data.step) == (1, 1)
    assert (second_upload.data.attempt, second_upload.data.step) == (2, 1)


async def test_rewriting_a_path_makes_a_new_artifact(harness, recording, make_submitted) -> None:
    provider = recording(
        replies=[
            _tool_use("write_file", path="a.md", content="v1"),
            _tool_use("write_file", path="./a.md", content="v2"),
            _end("done"),
        ]
    )
    h = harness(provider)
    event = make_submitted()
    await h.service.runner.run(event)

    uploads = [e for e in h.runs.events if isinstance(e, ArtifactUploaded)]
    task = event.metadata.task_id
    assert [(u.data.artifact_id, u.data.attempt, u.data.step) for u in uploads] == [
        (uuid.uuid5(task, "a.md#1"), 1, 1),
        (uuid.uuid5(task, "a.md#2"), 1, 2),
    ]


async def test_each_step_commits_its_progress_first_then_its_uploads(
    harness, recording, make_submitted
) -> None:
    two_writes = ModelReply(
        content=[
            ToolUseBlock(id="toolu_a", name="write_file", input={"path": "a.md", "content": "A"}),
            ToolUseBlock(id="toolu_b", name="write_file", input={"path": "b.md", "content": "B"}),
        ],
        stop_reason="tool_use",
    )
    provider = recording(
        replies=[
            _tool_use("list_files"),
            two_writes,
            _tool_use("write_file", path="c.md", content="C"),
            _end("done"),
        ]
    )
    h = harness(provider)
    await h.service.runner.run(make_submitted())

    assert [[e.name for e in commit] for commit in h.runs.commits] == [
        ["task.started"],
        ["task.progressed"],
        ["task.progressed", "artifact.uploaded", "artifact.uploaded"],
        ["task.progressed", "artifact.uploaded"],
        ["task.succeeded"],
    ]
    for step, *uploads in h.runs.commits[1:4]:
        assert isinstance(step, TaskProgressed)
        # an upload carries the step committed with it: the step that wrote the file
        assert [(u.data.attempt, u.data.step) for u in uploads] == [
            (step.data.attempt, step.data.step)
        ] * len(uploads)
    uploads = [e for e in h.runs.events if isinstance(e, ArtifactUploaded)]
    assert [(u.data.name, u.data.attempt, u.data.step) for u in uploads] == [
        ("a.md", 1, 2),
        ("b.md", 1, 2),
        ("c.md", 1, 3),
    ]
    done = h.runs.events[-1]
    assert isinstance(done, TaskSucceeded)
    assert done.data.artifact_ids == [u.data.artifact_id for u in uploads]


async def test_scripted_run_writes_every_artifact_on_its_last_step(
    harness, recording, make_submitted
) -> None:
    h = harness(recording(ScriptedProvider()))
    await h.service.runner.run(make_submitted("Notes\n/steps 3\n/artifact a\n/artifact b"))

    assert h.runs.names() == [
        "task.started",
        "task.progressed",
        "task.progressed",
        "task.progressed",
        "artifact.uploaded",
        "artifact.uploaded",
        "task.succeeded",
    ]
    _started, step1, step2, step3, up_a, up_b, _done = h.runs.events
    assert [s.data.step for s in (step1, step2, step3)] == [1, 2, 3]
    assert [s.data.message for s in (step1, step2, step3)] == [
        "Ran list_files()",
        "Ran list_files()",
        "Ran write_file(a), write_file(b)",
    ]
    assert [(u.data.name, u.data.attempt, u.data.step) for u in (up_a, up_b)] == [
        ("a", 1, 3),
        ("b", 1, 3),
    ]


async def test_superseded_attempt_stops_without_emitting(
    harness, recording, make_submitted
) -> None:
    event = make_submitted()

    class TakenOver:
        """Another worker claims the run while this attempt waits for the model."""

        async def complete(self, request):
            h.clock.now += 3600  # this worker's lease ran out unnoticed
            async with h.runs.transaction() as tx:
                await tx.claim(
                    event.metadata.task_id,
                    "acme",
                    worker_id="worker-2",
                    lease_seconds=60,
                    wall_seconds=60,
                    submitted={},
                )
            return _tool_use("list_files")

    h = harness(TakenOver())
    await h.service.runner.run(event)

    assert h.runs.names() == ["task.started"]
    assert h.runs.rows[event.metadata.task_id]["attempt"] == 2


async def test_progress_message_prefers_text_and_is_clipped(
    harness, recording, make_submitted
) -> None:
    reply = ModelReply(
        content=[TextBlock(text="  " + "x" * 400), ToolUseBlock(id="t", name="list_files")],
        stop_reason="tool_use",
    )
    h = harness(recording(replies=[reply, _end("done")]))
    await h.service.runner.run(make_submitted())

    message = h.runs.events[1].data.message
    assert len(message) == 300
    assert message.startswith("xxx")
    assert message.endswith("…")


def test_settings_defaults() -> None:
    settings = AgentSettings(env="dev")
    assert (settings.service_name, settings.http_port, settings.db_schema) == (
        "agent",
        8102,
        "agent",
    )
    assert (settings.consumer_concurrency, settings.consumer_visibility_timeout) == (4, 120)
    assert (settings.queue_name, settings.artifacts_bucket) == (
        "relay-dev-agent",
        "relay-dev-artifacts",
    )
    assert (settings.max_file_bytes, settings.llm_provider) == (10 * 1024 * 1024, "scripted")
    assert (
        settings.default_max_turns,
        settings.default_max_output_tokens,
        settings.default_max_wall_seconds,
    ) == (50, 32000, 1800)
    assert (
        settings.provider_max_retries,
        settings.provider_retry_base_seconds,
        settings.provider_retry_max_seconds,
    ) == (5, 1.0, 30.0)
    assert settings.run_lease_seconds == 60
    assert settings.control_queue_name == "relay-dev-agent-control"
    assert settings.worker_id


def test_unknown_provider_fails_at_start_up_listing_known_ones() -> None:
    with pytest.raises(UnknownProvider, match=r"'claude-9'.*scripted"):
        create_app(AgentSettings(llm_provider="claude-9"))


def test_handler_registry() -> None:
    assert set(HANDLERS) == {"task.submitted", "task.input_provided", "task.cancel_requested"}
