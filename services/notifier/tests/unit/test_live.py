"""A live subscription's buffer: a listener that falls behind is told to re-read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from notifier.live import Subscription, timeline_channel
from notifier.models import TimelineEvent


def _event(seq: int) -> TimelineEvent:
    return TimelineEvent(
        type="task.progressed",
        seq=seq,
        task_id=uuid.uuid4(),
        occurred_at=datetime.now(UTC),
        data={},
        event_id=uuid.uuid4(),
        tenant_id="acme",
    )


async def test_events_come_out_in_the_order_they_went_in() -> None:
    subscription = Subscription("c")
    for seq in (1, 2):
        subscription.deliver(_event(seq))
    assert [(await subscription.next(within=1)).seq for _ in range(2)] == [1, 2]  # type: ignore[union-attr]
    assert await subscription.next(within=0.01) is None  # nothing more: re-read


async def test_an_overflowing_listener_drops_its_backlog_for_a_reread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("notifier.live.SUBSCRIPTION_BUFFER", 3)
    subscription = Subscription("c")
    events = [_event(seq) for seq in range(1, 6)]
    for event in events:
        subscription.deliver(event)
    assert await subscription.next(within=1) is None  # the backlog is gone: re-read instead
    assert await subscription.next(within=1) == events[-1]


def test_the_channel_names_env_and_task() -> None:
    task_id = uuid.uuid4()
    assert timeline_channel("local", task_id) == f"relay:local:timeline:{task_id}"


def test_the_live_message_carries_the_tenant_but_the_client_json_does_not() -> None:
    event = _event(1)
    assert "tenant_id" not in event.client_json
    assert TimelineEvent.from_live_message(event.live_message()) == event
