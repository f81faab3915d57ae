from __future__ import annotations

from typing import Any

import pytest

from relay_shared.publisher import (
    MAX_REQUEST_BYTES,
    EventBridgePublisher,
    OutboundEvent,
    batches,
)


def _event(n: int, detail_bytes: int = 10) -> OutboundEvent:
    return OutboundEvent(
        event_id=f"e{n}",
        source="relay.tasks",
        detail_type="task.submitted",
        detail="x" * detail_bytes,
    )


class FakeEventBridge:
    """Answers PutEvents from a script: a set of event ids to fail on each call."""

    def __init__(self, fail_per_call: list[set[str]] | None = None, raise_on: int | None = None):
        self.calls: list[list[dict[str, Any]]] = []
        self._fail = fail_per_call or []
        self._raise_on = raise_on

    async def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(Entries)
        if self._raise_on is not None and len(self.calls) == self._raise_on:
            raise ConnectionError("endpoint unreachable")
        failing = self._fail[len(self.calls) - 1] if len(self.calls) <= len(self._fail) else set()
        return {
            "Entries": [
                {"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}
                if _id(e) in failing
                else {"EventId": "x"}
                for e in Entries
            ]
        }


def _id(entry: dict[str, Any]) -> str:
    # the fake identifies entries by their detail, which the tests make unique per event
    return str(entry["Detail"])


def test_batches_hold_at_most_ten_entries_in_order() -> None:
    events = [_event(n) for n in range(23)]
    split = batches(events)
    assert [len(b) for b in split] == [10, 10, 3]
    assert [e for b in split for e in b] == events


def test_batches_respect_the_request_size_limit() -> None:
    big = MAX_REQUEST_BYTES // 3
    split = batches([_event(n, big) for n in range(4)])
    assert [len(b) for b in split] == [2, 2]
    assert all(sum(e.size for e in b) <= MAX_REQUEST_BYTES for b in split)


async def test_resends_only_the_entries_that_failed() -> None:
    events = [
        OutboundEvent(event_id=f"e{n}", source="relay.tasks", detail_type="t", detail=f"d{n}")
        for n in range(3)
    ]
    fake = FakeEventBridge(fail_per_call=[{"d1"}, set()])
    outcome = await EventBridgePublisher(fake, "bus", max_backoff_seconds=0.01).publish(events)
    assert outcome.published == ["e0", "e2", "e1"]
    assert outcome.failed == {}
    assert [[_id(e) for e in call] for call in fake.calls] == [["d0", "d1", "d2"], ["d1"]]
    assert fake.calls[0][0]["EventBusName"] == "bus"


async def test_reports_entries_that_keep_failing() -> None:
    events = [OutboundEvent(event_id="e0", source="s", detail_type="t", detail="d0")]
    fake = FakeEventBridge(fail_per_call=[{"d0"}] * 10)
    publisher = EventBridgePublisher(fake, "bus", max_attempts=3, max_backoff_seconds=0.01)
    outcome = await publisher.publish(events)
    assert outcome.published == []
    assert outcome.failed["e0"].startswith("InternalFailure")
    assert len(fake.calls) == 3


async def test_oversize_event_is_refused_without_a_call() -> None:
    fake = FakeEventBridge()
    outcome = await EventBridgePublisher(fake, "bus").publish([_event(0, MAX_REQUEST_BYTES)])
    assert "limit" in outcome.failed["e0"]
    assert fake.calls == []


async def test_a_failing_call_marks_the_rest_failed_and_keeps_earlier_successes() -> None:
    events = [
        OutboundEvent(event_id=f"e{n}", source="s", detail_type="t", detail=f"d{n}")
        for n in range(15)
    ]
    fake = FakeEventBridge(raise_on=2)
    outcome = await EventBridgePublisher(fake, "bus").publish(events)
    assert outcome.published == [f"e{n}" for n in range(10)]
    assert sorted(outcome.failed) == sorted(f"e{n}" for n in range(10, 15))


def test_entry_size_counts_what_eventbridge_counts() -> None:
    event = OutboundEvent(event_id="e", source="relay.é", detail_type="t", detail="{}")
    assert event.size == 14 + len("relay.é".encode()) + 1 + 2


@pytest.mark.parametrize("detail_bytes", [MAX_REQUEST_BYTES, MAX_REQUEST_BYTES * 2])
def test_check_size_rejects_oversize(detail_bytes: int) -> None:
    with pytest.raises(ValueError, match="limit"):
        _event(0, detail_bytes).check_size()
