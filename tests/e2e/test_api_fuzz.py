"""Property-based fuzzing of the public API (issue 16) with Schemathesis, on a real `relay up`.

Every operation of contracts/openapi.json (the public API's document, generated from the
gateway) gets Hypothesis-generated requests, valid ones (positive) and invalid ones (negative),
sent to the session's stack as a tenant of this module's own whose rate limits are raised
(`unthrottle`), so the limiter does not answer 429 instead of the route. Each answer must:

- never be a 5xx (``not_a_server_error``);
- have a documented status code, content type, headers and body (``status_code_conformance``,
  ``content_type_conformance``, ``response_headers_conformance``,
  ``response_schema_conformance``);
- if it is a 4xx, be ``application/problem+json`` whose ``status`` is the answer's
  (``problem_json_for_every_4xx``, this module's own check).

Operations that take ids are fuzzed both with generated ids (a missing object: 404) and with
ids of real objects of the tenant (a task that finished with an artifact, a webhook endpoint),
so that the 2xx answers are checked against their schemas too.

What is not fuzzed: the WebSocket ``/v1/ws`` is not in the OpenAPI document (OpenAPI does not
describe WebSocket routes; tests/e2e/test_live_updates.py covers it). The SSE route
``GET /v1/tasks/{task_id}/events`` *is* fuzzed as plain HTTP: with a generated id it answers
404 at once, and with the id of a finished task the stream replays the timeline and ends after
the terminal event (or answers 204 after it), so every request returns. Its document gives the
schema of each event (``id``, ``event``, and ``data``: a TimelineEvent as JSON, by
``contentSchema``), which ``response_schema_conformance`` checks event by event;
``sse_events_conform`` adds what a schema cannot say: ``id:``/``event:`` are the ``seq``/``type``
of the event's ``data:``, of the task asked for.

Three bugs this test found have their own tests below, so that each stays fixed whatever the
generated examples happen to be: a NUL (U+0000) or a lone surrogate in a string of a body was a
502 (PostgreSQL cannot store either) and is a 422 naming the field; a ``last_event_id`` (or
``Last-Event-ID``) that is not a seq was an undocumented 400 and is a 422; and the stream's
schema described the ``data:`` line, not the event.

Deterministic: Hypothesis runs derandomized (the same examples every run, whatever the seed),
writes no example database, and the test ids are the operations' labels.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis import APIOperation, GenerationMode
from schemathesis.checks import CheckContext, CheckFunction, not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from relay_ops.stack.process import RunningStack

pytestmark = pytest.mark.e2e

# Hypothesis keeps caches in its home directory (no examples: database=None below); not in the
# checkout.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "relay-e2e-hypothesis")

OPENAPI = Path(__file__).resolve().parents[2] / "contracts" / "openapi.json"
SCHEMA = schemathesis.openapi.from_path(OPENAPI)


def _operations() -> dict[str, APIOperation[Any, Any, Any, Any]]:
    operations = {}
    for result in SCHEMA.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # the document itself is wrong: nothing to fuzz
        operations[result.ok().label] = result.ok()
    return operations


OPERATIONS = _operations()

# Examples per operation and mode. 18 operations x (45 + 30) is at most 1,350 cases; operations
# with little to vary (no parameters, no body) run out of distinct examples sooner, and the
# total is checked below (MINIMUM_CASES).
POSITIVE_EXAMPLES = 45
NEGATIVE_EXAMPLES = 30
MINIMUM_CASES = 1_000
PROBLEM = "application/problem+json"


def problem_json_for_every_4xx(ctx: CheckContext, response: Any, case: Any) -> bool | None:
    """Every 4xx is an RFC 9457 problem (DESIGN.md, *Public API*): the media type, and a body
    whose ``status`` is the answer's and which has a ``title``."""
    if not 400 <= response.status_code < 500:
        return None
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    assert content_type.startswith(PROBLEM), (
        f"{response.status_code} answered with {content_type!r}, not {PROBLEM}"
    )
    problem = json.loads(response.content)
    assert problem.get("status") == response.status_code, f"problem status: {problem}"
    assert problem.get("title"), f"problem without a title: {problem}"
    return True


EVENTS = "GET /v1/tasks/{task_id}/events"
DOCUMENT = json.loads(OPENAPI.read_text())
TIMELINE_EVENT = DOCUMENT["components"]["schemas"]["TimelineEvent"]


def _is_event_stream(response: Any) -> bool:
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    return bool(content_type.startswith("text/event-stream"))


def _server_sent_events(response: Any) -> list[dict[str, str]]:
    """The events of an SSE body, each as its fields; comments (heartbeats) aside."""
    text = response.content.decode().replace("\r\n", "\n").replace("\r", "\n")
    events = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line and not line.startswith(":"):
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
        if fields:
            events.append(fields)
    return events


def sse_events_conform(ctx: CheckContext, response: Any, case: Any) -> bool | None:
    """An SSE answer as DESIGN.md and the route's description document it: ``id:`` = seq,
    ``event:`` = type, ``data:`` = a TimelineEvent of the task asked for; comments (heartbeats)
    aside. (``response_schema_conformance`` checks each event against the document's schema;
    this is what a schema cannot say.)"""
    if not _is_event_stream(response):
        return None
    for fields in _server_sent_events(response):
        data = json.loads(fields["data"])
        jsonschema_rs.validate(TIMELINE_EVENT, data, validate_formats=True)
        assert (fields.get("id"), fields.get("event")) == (str(data["seq"]), data["type"]), fields
        assert data["task_id"] == case.path_parameters["task_id"], fields
    return True


CHECKS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    sse_events_conform,
    problem_json_for_every_4xx,
]

CASES: Counter[str] = Counter()  # generated cases sent, per test id


# --- a webhook receiver that answers 204 to everything (the real endpoints' deliveries) -------


class _Accept(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def receiver_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Accept)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# --- the fuzzing tenant and its real objects ------------------------------------------------


@dataclass(frozen=True)
class Tenant:
    base_url: str
    headers: dict[str, str]
    task_id: str  # a finished task with an artifact
    artifact_id: str
    webhook_id: str  # an endpoint that every operation but DELETE fuzzes
    doomed_webhook_id: str  # the endpoint DELETE fuzzes (its first real-id case deletes it)


@pytest.fixture(scope="module")
def fuzz_tenant(stack: RunningStack, receiver_url: str) -> Iterator[Tenant]:
    name = f"fuzz-{uuid.uuid4().hex[:6]}"
    key = stack.create_key(name)
    stack.unthrottle(name)
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=stack.gateway_url, headers=headers, timeout=30) as http:
        submitted = http.post("/v1/tasks", json={"prompt": "/steps 1\n/artifact notes.md"})
        assert submitted.status_code == 202, submitted.text
        task_id = submitted.json()["id"]
        deadline = time.monotonic() + 60
        while (task := http.get(f"/v1/tasks/{task_id}").json())["status"] != "succeeded":
            assert task["status"] not in {"failed", "cancelled"}, task
            assert time.monotonic() < deadline, task
            time.sleep(0.1)
        # the artifact is recorded from its own event, which may come after the task's end
        while not (artifacts := http.get(f"/v1/tasks/{task_id}/artifacts").json()["items"]):
            assert time.monotonic() < deadline, "the task wrote no artifact"
            time.sleep(0.1)
        webhooks = [
            http.post("/v1/webhooks", json={"url": f"{receiver_url}/{n}", "event_types": [t]})
            for n, t in (("kept", "task.succeeded"), ("doomed", "task.failed"))
        ]
        assert all(w.status_code == 201 for w in webhooks), [w.text for w in webhooks]
        yield Tenant(
            base_url=stack.gateway_url,
            headers=headers,
            task_id=task_id,
            artifact_id=artifacts[0]["id"],
            webhook_id=webhooks[0].json()["id"],
            doomed_webhook_id=webhooks[1].json()["id"],
        )
        # Nothing keeps delivering to the generated URLs once the module is done.
        for endpoint in http.get("/v1/webhooks").json()["items"]:
            http.delete(f"/v1/webhooks/{endpoint['id']}")


def real_ids(label: str, tenant: Tenant) -> dict[str, str]:
    """Path parameters naming the tenant's own objects, for the operation ``label``."""
    path = label.split(" ", 1)[1]
    doomed = label.startswith("DELETE ")
    ids = {
        "task_id": tenant.task_id,
        "artifact_id": tenant.artifact_id,
        "webhook_id": tenant.doomed_webhook_id if doomed else tenant.webhook_id,
    }
    return {name: value for name, value in ids.items() if f"{{{name}}}" in path}


@pytest.mark.parametrize("label", sorted(OPERATIONS))
@pytest.mark.parametrize(
    ("mode", "examples"),
    [
        pytest.param(GenerationMode.POSITIVE, POSITIVE_EXAMPLES, id="positive"),
        pytest.param(GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES, id="negative"),
    ],
)
def test_every_answer_is_documented_and_no_input_is_a_server_error(
    fuzz_tenant: Tenant,
    label: str,
    mode: GenerationMode,
    examples: int,
    request: pytest.FixtureRequest,
) -> None:
    operation = OPERATIONS[label]
    strategy = operation.as_strategy(generation_mode=mode)
    if ids := real_ids(label, fuzz_tenant):
        strategy = st.one_of(
            strategy, operation.as_strategy(generation_mode=mode, path_parameters=ids)
        )
    session = requests.Session()

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def fuzz(case: Any) -> None:
        CASES[request.node.name] += 1
        case.call_and_validate(
            base_url=fuzz_tenant.base_url,
            session=session,
            headers=fuzz_tenant.headers,
            checks=CHECKS,
            timeout=30,
        )

    try:
        fuzz()
    finally:
        session.close()


def test_at_least_a_thousand_cases_reached_the_api() -> None:
    """Runs after the fuzzing above (pytest keeps a module's order); on a partial selection
    (``-k``) there is nothing to count."""
    expected = len(OPERATIONS) * 2
    if len(CASES) < expected:
        pytest.skip(f"only {len(CASES)} of {expected} fuzzing tests ran")
    total = sum(CASES.values())
    print(f"\n{total} generated cases over {len(OPERATIONS)} operations: {dict(CASES)}")
    assert total >= MINIMUM_CASES, dict(CASES)


# --- the bugs this test found, each pinned by a test of its own ------------------------------


@pytest.fixture(scope="module")
def running_task(fuzz_tenant: Tenant) -> Iterator[str]:
    """A task of the fuzzing tenant that runs for minutes (a cancel that got through would
    show); cancelled when the module is done."""
    with httpx.Client(
        base_url=fuzz_tenant.base_url, headers=fuzz_tenant.headers, timeout=30
    ) as http:
        submitted = http.post("/v1/tasks", json={"prompt": "/steps 200\n/sleep 2"})
        assert submitted.status_code == 202, submitted.text
        task_id = submitted.json()["id"]
        deadline = time.monotonic() + 60
        while (status := http.get(f"/v1/tasks/{task_id}").json()["status"]) != "running":
            assert status == "queued", status
            assert time.monotonic() < deadline, "the task did not start"
            time.sleep(0.1)
        yield task_id
        http.post(f"/v1/tasks/{task_id}/cancel")


def _state(http: httpx.Client, task_id: str) -> dict[str, Any]:
    """What a refused request must leave as it was: the tenant's newest tasks, the running
    task's status and every webhook endpoint."""
    tasks = http.get("/v1/tasks", params={"limit": 100}).json()["items"]
    endpoints = http.get("/v1/webhooks").json()["items"]
    return {
        "tasks": [task["id"] for task in tasks],
        "running": http.get(f"/v1/tasks/{task_id}").json()["status"],
        "webhooks": sorted(json.dumps(endpoint, sort_keys=True) for endpoint in endpoints),
    }


# (operation, body as sent, where the 422 says the fault is): "\u0000" is a NUL, "\ud800" and a
# lone "\ud83d" are lone surrogates (valid JSON escapes, but no Unicode text, as UTF-8 and so
# PostgreSQL cannot hold them)
NOT_TEXT: list[tuple[str, str, str]] = [
    ("POST /v1/tasks", r'{"prompt": "a\u0000b"}', "body.prompt"),
    ("POST /v1/tasks", r'{"prompt": "hi", "model": "\u0000"}', "body.model"),
    ("POST /v1/tasks", r'{"prompt": "hi", "metadata": {"k": "a\u0000"}}', "body.metadata.k"),
    ("POST /v1/tasks", r'{"prompt": "hi", "metadata": {"k": "\ud800"}}', "body.metadata.k"),
    ("POST /v1/tasks/{task_id}/cancel", r'{"reason": "a\u0000b"}', "body.reason"),
    (
        "POST /v1/webhooks",
        r'{"url": "https://example.com/hook", "description": "a\u0000b"}',
        "body.description",
    ),
    ("POST /v1/webhooks", r'{"url": "https://example.com/\u0000"}', "body.url"),
    ("PATCH /v1/webhooks/{webhook_id}", r'{"description": "\ud83d"}', "body.description"),
    ("PATCH /v1/webhooks/{webhook_id}", r'{"url": "https://example.com/a\u0000"}', "body.url"),
]


@pytest.mark.parametrize(
    ("label", "body", "location"),
    NOT_TEXT,
    ids=[
        f"{label} {location} {'NUL' if '0000' in body else 'surrogate'}"
        for label, body, location in NOT_TEXT
    ],
)
def test_a_string_that_is_not_storable_text_is_a_422_naming_it_and_changes_nothing(
    fuzz_tenant: Tenant, running_task: str, label: str, body: str, location: str
) -> None:
    method, path = label.split(" ", 1)
    url = path.format(task_id=running_task, webhook_id=fuzz_tenant.webhook_id)
    with httpx.Client(
        base_url=fuzz_tenant.base_url, headers=fuzz_tenant.headers, timeout=30
    ) as http:
        before = _state(http, running_task)
        response = http.request(
            method, url, content=body.encode(), headers={"Content-Type": "application/json"}
        )
        after = _state(http, running_task)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    errors = response.json()["errors"]
    assert location in [error["location"] for error in errors], errors
    assert before == after


@pytest.mark.parametrize(
    ("where", "value"),
    [("query", "x"), ("query", "-1"), ("query", "2.5"), ("header", "abc"), ("header", "-3")],
)
def test_a_resume_point_that_is_not_a_seq_is_the_documented_422(
    fuzz_tenant: Tenant, where: str, value: str
) -> None:
    case = OPERATIONS[EVENTS].Case(
        path_parameters={"task_id": fuzz_tenant.task_id},
        query={"last_event_id": value} if where == "query" else None,
        headers={"Last-Event-ID": value} if where == "header" else None,
    )
    response = case.call_and_validate(
        base_url=fuzz_tenant.base_url,
        headers=fuzz_tenant.headers,
        checks=[status_code_conformance, problem_json_for_every_4xx],
        timeout=30,
    )
    assert response.status_code == 422


def test_each_event_of_the_stream_is_as_the_document_says(fuzz_tenant: Tenant) -> None:
    """The finished task's whole timeline, checked against the document's schema of an event
    (whose ``data`` has a ``contentSchema``) and by ``sse_events_conform``."""
    case = OPERATIONS[EVENTS].Case(path_parameters={"task_id": fuzz_tenant.task_id})
    response = case.call_and_validate(
        base_url=fuzz_tenant.base_url,
        headers=fuzz_tenant.headers,
        checks=[response_schema_conformance, sse_events_conform],
        timeout=30,
    )
    assert response.status_code == 200
    names = [fields["event"] for fields in _server_sent_events(response)]
    assert {"task.submitted", "task.started", "task.succeeded"} <= set(names), names
