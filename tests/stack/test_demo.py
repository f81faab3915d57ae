"""The demo's public-API client and live view, driven by an in-memory stand-in of the public API
contract (httpx.MockTransport: no sockets). The real services are exercised by `relay demo`
itself and by the end-to-end suite."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from relay_ops.demo.client import DemoFailure, PublicApi
from relay_ops.demo.flow import SAMPLE, run_sample, services_for
from relay_ops.demo.view import TimelineView
from relay_shared.events import (
    ArtifactPublishedData,
    DomainEvent,
    TaskFailed,
    TaskFailedData,
    TaskProgressed,
    TaskProgressedData,
    TaskStarted,
    TaskStartedData,
    TaskSubmitted,
    TaskSubmittedData,
    TaskSucceeded,
    TaskSucceededData,
    Usage,
)

KEY = "rly_test_key"
GATEWAY = "http://gateway.test"
STORAGE = "http://storage.test"
REPORT = b"# Relay\n\nA short report.\n"


def _timeline(
    task_id: str, artifact: dict[str, Any], *, fail: bool = False
) -> list[dict[str, Any]]:
    """Timeline event JSON (the SSE data) for a sample run, built from the catalog models."""
    usage = [Usage(input_tokens=110 * n, output_tokens=20 * n) for n in (1, 2, 3)]
    data: list[tuple[type[DomainEvent] | str, Any]] = [
        (TaskSubmitted, TaskSubmittedData(prompt=SAMPLE.prompt, model="scripted")),
        (TaskStarted, TaskStartedData(attempt=1, worker_id="w-1")),
        *(
            (TaskProgressed, TaskProgressedData(attempt=1, step=n, message=f"did {n}", usage=u))
            for n, u in enumerate(usage, start=1)
        ),
        (
            "artifact.published",
            ArtifactPublishedData(
                **{k: artifact[k] for k in ("name", "content_type", "size", "sha256")},
                artifact_id=artifact["id"],
            ),
        ),
    ]
    if fail:
        data.append((TaskFailed, TaskFailedData(attempt=1, code="scripted_failure", message="no")))
    else:
        data.append((TaskSucceeded, TaskSucceededData(attempt=1, steps=3, summary="Done.")))
    return [
        {
            "type": kind if isinstance(kind, str) else kind.name,
            "seq": seq,
            "task_id": task_id,
            "occurred_at": datetime.now(UTC).isoformat(),
            "data": payload.model_dump(mode="json"),
            "event_id": str(uuid.uuid4()),
        }
        for seq, (kind, payload) in enumerate(data, start=1)
    ]


class FakePublicApi:
    """The public API's contract, in memory, with knobs for the failures the demo must report."""

    def __init__(
        self,
        *,
        fail: bool = False,
        listed_sha256: str | None = None,
        name: str = "report.md",
        drop_stream_after: int | None = None,
    ) -> None:
        self.task_id = str(uuid.uuid4())
        self.artifact = {
            "id": str(uuid.uuid4()),
            "task_id": self.task_id,
            "name": name,
            "content_type": "text/markdown",
            "size": len(REPORT),
            "sha256": listed_sha256 or hashlib.sha256(REPORT).hexdigest(),
            "created_at": datetime.now(UTC).isoformat(),
        }
        self.events = _timeline(self.task_id, self.artifact, fail=fail)
        self.fail = fail
        self.drop_stream_after = drop_stream_after
        self.stream_requests: list[str | None] = []
        self.artifact_lists = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "storage.test":
            # a presigned URL carries its own authority: the API key must not travel there
            assert "authorization" not in request.headers
            return httpx.Response(200, content=REPORT)
        assert request.headers["authorization"] == f"Bearer {KEY}"
        path = request.url.path
        base = f"/v1/tasks/{self.task_id}"
        if request.method == "POST" and path == "/v1/tasks":
            return httpx.Response(202, json=self._task("queued"))
        if path == base:
            return httpx.Response(200, json=self._task("failed" if self.fail else "succeeded"))
        if path == f"{base}/events":
            return self._stream(request.headers.get("last-event-id"))
        if path == f"{base}/artifacts":
            self.artifact_lists += 1
            # publishing trails the terminal event: the first listing is still empty
            items = [self.artifact] if self.artifact_lists > 1 else []
            return httpx.Response(200, json={"items": items})
        if path == f"{base}/artifacts/{self.artifact['id']}/content":
            return httpx.Response(302, headers={"location": f"{STORAGE}/presigned?sig=x"})
        return httpx.Response(404, json={"title": "Not Found", "detail": path})

    def _task(self, status: str) -> dict[str, Any]:
        error = {"code": "scripted_failure", "message": "no"} if status == "failed" else None
        return {"id": self.task_id, "status": status, "prompt": SAMPLE.prompt, "error": error}

    def _stream(self, last_event_id: str | None) -> httpx.Response:
        self.stream_requests.append(last_event_id)
        after = int(last_event_id or 0)
        events = [e for e in self.events if e["seq"] > after]
        if self.drop_stream_after is not None and len(self.stream_requests) == 1:
            events = events[: self.drop_stream_after]
        body = "".join(
            f"id: {e['seq']}\nevent: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events
        )
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=(": hi\n\n" + body).encode()
        )


@pytest.fixture
def console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200), out


async def _run(fake: FakePublicApi, console: Console, output_dir: Path) -> Any:
    transport = httpx.MockTransport(fake.handle)
    async with httpx.AsyncClient(
        base_url=GATEWAY, headers={"Authorization": f"Bearer {KEY}"}, transport=transport
    ) as http:
        return await run_sample(PublicApi(http), console, output_dir=output_dir, time_limit=10)


async def test_the_sample_task_is_watched_live_and_its_artifact_saved_verified(
    console: tuple[Console, io.StringIO], tmp_path: Path
) -> None:
    fake = FakePublicApi()
    result = await _run(fake, console[0], tmp_path)

    saved = tmp_path / fake.task_id / "report.md"
    assert result.saved == (saved,)
    assert saved.read_bytes() == REPORT
    shown = console[1].getvalue()
    assert "submitted" in shown
    assert "step 2/3: did 2 (220 in / 40 out tokens)" in shown
    assert "report.md (25 B, sha256" in shown
    assert "succeeded in" in shown


async def test_a_dropped_stream_resumes_after_the_last_event_seen(
    console: tuple[Console, io.StringIO], tmp_path: Path
) -> None:
    fake = FakePublicApi(drop_stream_after=2)
    await _run(fake, console[0], tmp_path)
    assert fake.stream_requests == [None, "2"]
    shown = console[1].getvalue()
    assert shown.count("started") == 1
    assert "step 3/3" in shown


async def test_a_wrong_checksum_fails_the_download_and_saves_nothing(
    console: tuple[Console, io.StringIO], tmp_path: Path
) -> None:
    fake = FakePublicApi(listed_sha256="0" * 64)
    with pytest.raises(DemoFailure) as raised:
        await _run(fake, console[0], tmp_path)
    assert raised.value.step == "download report.md"
    assert "does not match" in raised.value.detail
    assert services_for(raised.value.step) == ("gateway", "artifacts")
    assert not (tmp_path / fake.task_id / "report.md").exists()


async def test_a_failed_task_is_reported_with_its_error(
    console: tuple[Console, io.StringIO], tmp_path: Path
) -> None:
    with pytest.raises(DemoFailure) as raised:
        await _run(FakePublicApi(fail=True), console[0], tmp_path)
    assert raised.value.step == "run the task"
    assert "failed" in raised.value.detail
    assert "scripted_failure" in raised.value.detail
    assert "agent" in services_for(raised.value.step)


async def test_an_artifact_name_never_chooses_where_it_lands(
    console: tuple[Console, io.StringIO], tmp_path: Path
) -> None:
    fake = FakePublicApi(name="../../escape.md")
    transport = httpx.MockTransport(fake.handle)
    async with httpx.AsyncClient(
        base_url=GATEWAY, headers={"Authorization": f"Bearer {KEY}"}, transport=transport
    ) as http:
        saved = await PublicApi(http).download(fake.artifact, tmp_path / "out")
    assert saved == tmp_path / "out" / "escape.md"
    assert saved.read_bytes() == REPORT


def test_the_view_shows_each_event_once_with_steps_out_of_the_expected_total() -> None:
    fake = FakePublicApi()
    view = TimelineView(fake.task_id, expected_steps=3)
    for event in [*fake.events[:3], fake.events[1], *fake.events[3:]]:
        view.add(event)
    assert [row.label for row in view.rows] == [
        "submitted",
        "started",
        "progress",
        "progress",
        "progress",
        "artifact",
        "succeeded",
    ]
    assert view.rows[4].detail == "step 3/3: did 3 (330 in / 60 out tokens)"
    assert view.outcome == "task.succeeded"


def test_the_view_shows_a_question_its_answer_and_the_resumed_attempt() -> None:
    view = TimelineView("t")
    question = {"question_id": "q", "question": "Which region?", "attempt": 1, "step": 1}
    for seq, (kind, data) in enumerate(
        [
            ("task.input_requested", question),
            ("task.input_provided", {"question_id": "q", "text": "eu-west-1"}),
            ("task.started", {"attempt": 2, "worker_id": "w", "resumed": {"step": 1}}),
        ],
        1,
    ):
        view.add({"type": kind, "seq": seq, "data": data})
    assert [(row.label, row.detail) for row in view.rows] == [
        ("question", "Which region? (answer with POST …/input)"),
        ("answer", "eu-west-1"),
        ("started", "attempt 2 on worker w (resumed after the answer)"),
    ]
