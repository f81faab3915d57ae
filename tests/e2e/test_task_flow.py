"""A task end to end through all five services, seen only through the public API."""

from __future__ import annotations

import asyncio
import hashlib

import httpx
import pytest

from relay_devkit.api_client import PublicApi, TimelineEvent

pytestmark = pytest.mark.e2e

TERMINAL = {"task.succeeded", "task.failed", "task.cancelled"}


async def test_the_timeline_reads_in_order_and_ends_after_the_terminal_event(
    api: PublicApi,
) -> None:
    task = await api.submit("Write a report.\n/steps 3\n/artifact report.md")
    assert task["status"] == "queued"
    events = await api.timeline(task["id"])

    assert [e.event for e in events] == [
        "task.submitted",
        "task.started",
        "task.progressed",
        "task.progressed",
        "task.progressed",
        "artifact.published",
        "task.succeeded",
    ]
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    for e in events:
        assert e.data["type"] == e.event
        assert e.data["seq"] == e.id
        assert e.data["task_id"] == task["id"]
        assert e.data["occurred_at"]
        assert isinstance(e.data["data"], dict)
    assert [e.data["data"]["step"] for e in events if e.event == "task.progressed"] == [1, 2, 3]


async def test_last_event_id_resumes_after_the_given_seq(api: PublicApi) -> None:
    task = await api.submit("/steps 2")
    everything = await api.timeline(task["id"])
    resumed = await api.timeline(task["id"], last_event_id=2)
    assert resumed == everything[2:]
    assert resumed[0].id == 3
    # resuming after the terminal event: nothing more will come, and an EventSource must not
    # reconnect forever, so the answer is 204 No Content
    done = await api.http.get(
        f"/v1/tasks/{task['id']}/events", headers={"Last-Event-ID": str(everything[-1].id)}
    )
    assert (done.status_code, done.content) == (204, b"")


async def test_followers_joining_a_running_task_each_get_the_timeline_from_their_resume_point(
    api: PublicApi,
) -> None:
    """Clients following one task share the gateway's one stream from the notifier (ADR 0024):
    one joining mid-run from the start gets the history then the live events, one resuming
    with Last-Event-ID gets what follows it, all in order, none twice."""
    task = await api.submit("/steps 6\n/sleep 0.2")
    third = asyncio.Event()

    def seen(event: TimelineEvent) -> None:
        if event.id >= 3:
            third.set()

    first = asyncio.create_task(api.timeline(task["id"], on_event=seen))
    await asyncio.wait_for(third.wait(), timeout=30)

    from_start, resumed = await asyncio.gather(
        api.timeline(task["id"]), api.timeline(task["id"], last_event_id=2)
    )
    everything = await first

    assert everything[-1].event == "task.succeeded"
    assert [e.id for e in everything] == list(range(1, len(everything) + 1))
    assert from_start == everything
    assert resumed == everything[2:]


async def test_the_task_records_its_outcome_and_usage(api: PublicApi) -> None:
    task = await api.submit("/steps 2")
    events = await api.timeline(task["id"])
    final = await api.finished_task(task["id"])
    assert final["status"] == "succeeded"
    assert final["started_at"]
    assert final["finished_at"]
    assert final["created_at"] <= final["started_at"] <= final["finished_at"]
    assert final["error"] is None
    assert final["result"]["summary"]
    succeeded = events[-1].data["data"]
    assert final["usage"] == {**succeeded["usage"], "cost_usd": succeeded["cost_usd"]}
    assert final["limits"]["max_turns"] >= 1  # the effective limits, defaults filled in
    assert final["usage"]["output_tokens"] > 0


async def test_the_downloaded_artifact_matches_its_listed_size_and_sha256(api: PublicApi) -> None:
    task = await api.submit("/steps 1\n/artifact notes.txt\n/artifact data/table.csv")
    await api.timeline(task["id"])
    items = await api.artifacts(task["id"])
    assert sorted(a["name"] for a in items) == ["data/table.csv", "notes.txt"]
    for artifact in items:
        assert artifact["task_id"] == task["id"]
        detail = (await api.http.get(f"/v1/tasks/{task['id']}/artifacts/{artifact['id']}")).json()
        assert detail["download_url"].startswith("http")
        content = await api.http.get(f"/v1/tasks/{task['id']}/artifacts/{artifact['id']}/content")
        assert content.status_code == 302
        async with httpx.AsyncClient() as plain:  # the presigned URL needs no API key
            body = (await plain.get(content.headers["location"])).content
        assert len(body) == artifact["size"]
        assert hashlib.sha256(body).hexdigest() == artifact["sha256"]


async def test_fail_directive_ends_the_task_failed_with_that_message(api: PublicApi) -> None:
    task = await api.submit("/steps 1\n/fail the model gave up")
    events = await api.timeline(task["id"])
    assert events[-1].event == "task.failed"
    assert events[-1].data["data"]["message"] == "the model gave up"
    final = await api.finished_task(task["id"])
    assert final["status"] == "failed"
    assert final["error"]["message"] == "the model gave up"


async def test_twenty_concurrent_tasks_all_succeed(api: PublicApi) -> None:
    tasks = await asyncio.gather(*(api.submit(f"task {n}\n/steps 2") for n in range(20)))
    timelines = await asyncio.gather(*(api.timeline(t["id"], within=120) for t in tasks))
    for timeline in timelines:
        assert timeline[-1].event == "task.succeeded"
        assert [e.id for e in timeline] == list(range(1, len(timeline) + 1))
        assert sum(e.event in TERMINAL for e in timeline) == 1
    finals = await asyncio.gather(*(api.finished_task(t["id"]) for t in tasks))
    assert {f["status"] for f in finals} == {"succeeded"}


async def test_list_filters_by_status_and_pages_newest_first(api: PublicApi) -> None:
    ok = await api.submit("/steps 1")
    bad = await api.submit("/steps 1\n/fail nope")
    await asyncio.gather(api.timeline(ok["id"]), api.timeline(bad["id"]))
    failed_ids = [t["id"] for t in await api.all_tasks(status="failed")]
    succeeded_ids = [t["id"] for t in await api.all_tasks(status="succeeded")]
    assert bad["id"] in failed_ids
    assert bad["id"] not in succeeded_ids
    assert ok["id"] in succeeded_ids
    assert ok["id"] not in failed_ids
    page = (await api.http.get("/v1/tasks", params={"limit": 1})).json()
    assert len(page["items"]) == 1
    assert page["next_cursor"]
    newest = page["items"][0]
    assert newest["created_at"] >= ok["created_at"]
