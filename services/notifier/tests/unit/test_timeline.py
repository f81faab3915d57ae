"""The ordering rules and the held-event release, on the pure TaskTimeline aggregate."""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

import pytest

from notifier.timeline import TaskTimeline, TimelineEntry
from relay_shared.events import DomainEvent

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _timeline(events: Iterable[DomainEvent] = ()) -> TaskTimeline:
    events = list(events)
    task_id = events[0].metadata.task_id if events else uuid.uuid4()
    timeline = TaskTimeline(task_id, "acme")
    _offer(timeline, events)
    return timeline


def _offer(timeline: TaskTimeline, events: Iterable[DomainEvent], now: datetime = T0) -> None:
    for event in events:
        timeline.offer(TimelineEntry.from_event(event), now=now)


def _types(timeline: TaskTimeline) -> list[str]:
    return [e.type for e in timeline.changes.appended]


def _ids(timeline: TaskTimeline) -> list[uuid.UUID]:
    return [e.event_id for e in timeline.changes.appended]


def _label(event: DomainEvent) -> str:
    data = event.data.model_dump()
    if event.name == "task.progressed" or (
        event.name == "artifact.published" and data["step"] is not None
    ):
        return f"{event.name}({data['attempt']},{data['step']})"
    if event.name == "task.started":
        return f"{event.name}({data['attempt']})"
    return event.name


def _labels(timeline: TaskTimeline, events: list[DomainEvent]) -> list[str]:
    by_id = {e.metadata.event_id: e for e in events}
    return [_label(by_id[event_id]) for event_id in _ids(timeline)]


def _assert_causal(timeline: TaskTimeline, run: list[DomainEvent], steps: int) -> None:
    """The run's partial order: submitted, started, the steps in order, the terminal last;
    each artifact somewhere after the step that wrote it (so it may sit between later steps)."""
    appended = _ids(timeline)
    assert sorted(appended) == sorted(e.metadata.event_id for e in run)  # each exactly once
    labels = _labels(timeline, run)
    assert labels[:2] == ["task.submitted", "task.started(1)"]
    assert labels[-1] == "task.succeeded"
    assert [x for x in labels if x.startswith("task.progressed")] == [
        f"task.progressed(1,{k})" for k in range(1, steps + 1)
    ]
    artifacts = [e for e in run if e.name == "artifact.published"]
    assert artifacts
    for artifact in artifacts:
        data = artifact.data.model_dump()
        wrote_it = labels.index(f"task.progressed(1,{data['step']})")
        assert appended.index(artifact.metadata.event_id) > wrote_it


def _linear_extensions(written_on: int, steps: int) -> set[tuple[str, ...]]:
    """Every order of a one-artifact run that the rules allow: the artifact after its step."""
    progressed = [f"task.progressed(1,{k})" for k in range(1, steps + 1)]
    return {
        (
            "task.submitted",
            "task.started(1)",
            *progressed[:at],
            f"artifact.published(1,{written_on})",
            *progressed[at:],
            "task.succeeded",
        )
        for at in range(written_on, steps + 1)
    }


@pytest.mark.parametrize("written_on", [1, 2])
def test_every_arrival_order_of_a_run_reads_in_causal_order(
    task_events: Callable, written_on: int
) -> None:
    run = task_events().run(steps=2, written_on=[written_on])
    seen: set[tuple[str, ...]] = set()
    for order in itertools.permutations(run):  # all 720 arrival orders
        timeline = _timeline(order)
        _assert_causal(timeline, run, steps=2)
        assert [e.seq for e in timeline.changes.appended] == [1, 2, 3, 4, 5, 6]
        assert timeline.held == {}
        assert timeline.terminal_seq == 6
        seen.add(tuple(_labels(timeline, run)))
    # exactly the orders the rules allow, each reached by some arrival order
    assert seen == _linear_extensions(written_on, steps=2)


@pytest.mark.parametrize("seed", range(20))
def test_a_long_shuffled_run_reads_in_causal_order(task_events: Callable, seed: int) -> None:
    rng = random.Random(seed)
    written_on = [*rng.choices(range(1, 26), k=4), 25]  # repeats allowed; run() sorts them
    run = task_events().run(steps=25, written_on=written_on)
    shuffled = run[:]
    rng.shuffle(shuffled)
    timeline = _timeline(shuffled)
    _assert_causal(timeline, run, steps=25)
    assert [e.seq for e in timeline.changes.appended] == list(range(1, 34))
    assert timeline.held == {}
    assert timeline.terminal_seq == 33


def test_an_artifact_written_on_a_middle_step_reads_between_the_steps(
    task_events: Callable,
) -> None:
    run = task_events().run(steps=3, written_on=[2])
    expected = [
        "task.submitted",
        "task.started(1)",
        "task.progressed(1,1)",
        "task.progressed(1,2)",
        "artifact.published(1,2)",
        "task.progressed(1,3)",
        "task.succeeded",
    ]
    assert _labels(_timeline(run), run) == expected
    assert _labels(_timeline(reversed(run)), run) == expected  # held, then released in order


def test_a_reversed_run_is_released_in_occurrence_order(task_events: Callable) -> None:
    run = task_events().run(steps=3)
    timeline = _timeline(reversed(run))  # all held until task.submitted, then released at once
    assert _ids(timeline) == [e.metadata.event_id for e in run]


def test_nothing_is_appended_before_task_submitted(task_events: Callable) -> None:
    t = task_events()
    timeline = _timeline([t.cancel_requested(), t.started()])
    assert _types(timeline) == []
    assert len(timeline.held) == 2
    _offer(timeline, [t.submitted()])
    assert _types(timeline) == ["task.submitted", "task.cancel_requested", "task.started"]


def test_a_step_waits_for_the_previous_step_of_its_attempt(task_events: Callable) -> None:
    t = task_events()
    events = [t.submitted(), t.started(), t.progressed(2)]
    timeline = _timeline(events)
    assert _types(timeline) == ["task.submitted", "task.started"]
    step1 = t.progressed(1)
    _offer(timeline, [step1])
    assert _labels(timeline, [*events, step1])[2:] == [
        "task.progressed(1,1)",
        "task.progressed(1,2)",
    ]


def test_a_step_waits_for_the_start_of_its_own_attempt(task_events: Callable) -> None:
    t = task_events()
    timeline = _timeline([t.submitted(), t.started(attempt=1), t.progressed(1, attempt=2)])
    assert _types(timeline) == ["task.submitted", "task.started"]
    assert len(timeline.held) == 1
    _offer(timeline, [t.started(attempt=2)])
    assert _types(timeline)[2:] == ["task.started", "task.progressed"]


def test_an_artifact_waits_for_the_step_that_wrote_it(task_events: Callable) -> None:
    t = task_events()
    artifact = t.published(attempt=1, step=2)
    events = [t.submitted(), t.started(), t.progressed(1), artifact]
    timeline = _timeline(events)
    # the start and the step before are in; the step that wrote it is not
    assert _types(timeline) == ["task.submitted", "task.started", "task.progressed"]
    assert list(timeline.held) == [artifact.metadata.event_id]
    step2 = t.progressed(2)
    _offer(timeline, [step2])
    assert _labels(timeline, [*events, step2]) == [
        "task.submitted",
        "task.started(1)",
        "task.progressed(1,1)",
        "task.progressed(1,2)",
        "artifact.published(1,2)",
    ]
    assert timeline.held == {}


def test_an_artifact_waits_for_its_step_of_its_own_attempt(task_events: Callable) -> None:
    t = task_events()
    artifact = t.published(attempt=2, step=1)
    timeline = _timeline([t.submitted(), t.started(attempt=1), t.progressed(1, attempt=1)])
    _offer(timeline, [artifact, t.started(attempt=2)])
    assert _types(timeline) == ["task.submitted", "task.started", "task.progressed", "task.started"]
    assert list(timeline.held) == [artifact.metadata.event_id]
    _offer(timeline, [t.progressed(1, attempt=2)])
    assert _types(timeline)[4:] == ["task.progressed", "artifact.published"]
    assert timeline.held == {}


def test_an_artifact_with_only_an_attempt_needs_the_start_of_that_attempt(
    task_events: Callable,
) -> None:
    t = task_events()
    timeline = _timeline([t.submitted(), t.started(attempt=1), t.published(attempt=2)])
    assert _types(timeline) == ["task.submitted", "task.started"]
    assert len(timeline.held) == 1
    _offer(timeline, [t.started(attempt=2)])
    assert _types(timeline) == [
        "task.submitted",
        "task.started",
        "task.started",
        "artifact.published",
    ]


def test_an_artifact_without_provenance_needs_a_start_of_any_attempt(
    task_events: Callable,
) -> None:
    t = task_events()
    timeline = _timeline([t.submitted(), t.published()])
    assert _types(timeline) == ["task.submitted"]
    _offer(timeline, [t.started(attempt=2)])
    assert _types(timeline) == ["task.submitted", "task.started", "artifact.published"]


def test_a_terminal_event_waits_for_steps_artifacts_and_its_start(task_events: Callable) -> None:
    t = task_events()
    a, b = uuid.uuid4(), uuid.uuid4()
    timeline = _timeline([t.succeeded(attempt=1, steps=2, artifact_ids=[a, b]), t.submitted()])
    for event in [t.started(), t.progressed(1), t.progressed(2), t.published(a)]:
        assert timeline.terminal_seq is None
        _offer(timeline, [event])
    assert timeline.terminal_seq is None  # artifact b is still missing
    _offer(timeline, [t.published(b)])
    assert timeline.terminal_seq == 7
    assert _types(timeline)[-1] == "task.succeeded"


def test_a_task_that_ended_before_any_attempt_needs_only_submission(task_events: Callable) -> None:
    t = task_events()
    timeline = _timeline([t.cancelled(attempt=0), t.submitted()])
    assert _types(timeline) == ["task.submitted", "task.cancelled"]


def test_after_the_terminal_event_later_events_are_late(task_events: Callable) -> None:
    t = task_events()
    timeline = _timeline([t.submitted(), t.failed(attempt=0)])
    _offer(timeline, [t.cancel_requested(), t.started(), t.succeeded(attempt=0)])
    assert _types(timeline) == ["task.submitted", "task.failed"]
    assert [e.type for e in timeline.changes.late] == [
        "task.cancel_requested",
        "task.started",
        "task.succeeded",
    ]
    assert timeline.terminal_seq == 2
    assert timeline.last_seq == 2


def test_held_events_still_waiting_when_the_terminal_lands_become_late(
    task_events: Callable,
) -> None:
    t = task_events()
    stray = t.progressed(1, attempt=2)  # its attempt never started
    timeline = _timeline([t.submitted(), stray, t.cancelled(attempt=0)])
    assert _types(timeline) == ["task.submitted", "task.cancelled"]
    assert [e.event_id for e in timeline.changes.late] == [stray.metadata.event_id]
    assert timeline.held == {}


# --- release order ------------------------------------------------------------------------


def test_events_released_together_go_non_terminal_first_then_by_occurred_at(
    task_events: Callable,
) -> None:
    t = task_events()
    cancelled = t.cancelled(attempt=0)  # occurred first, but terminal
    cancel_requested = t.cancel_requested()
    submitted = t.submitted()
    timeline = _timeline([cancel_requested, cancelled, submitted])
    assert _types(timeline) == ["task.submitted", "task.cancel_requested", "task.cancelled"]

    t = task_events()
    submitted, started = t.submitted(), t.started()
    step, artifact = t.progressed(1), t.published()  # step occurred before the artifact
    timeline = _timeline([submitted, artifact, step, started])
    assert _ids(timeline)[2:] == [step.metadata.event_id, artifact.metadata.event_id]


def test_nothing_is_released_before_the_hold_limit(task_events: Callable) -> None:
    t = task_events()
    timeline = _timeline([t.submitted(), t.succeeded(attempt=0, artifact_ids=[uuid.uuid4()])])
    timeline.release_overdue(held_before=T0 - timedelta(seconds=1))
    assert _types(timeline) == ["task.submitted"]
    assert len(timeline.held) == 1


def test_an_overdue_terminal_is_released_without_its_missing_artifact(
    task_events: Callable,
) -> None:
    t = task_events()
    timeline = _timeline([t.submitted(), t.started(), t.succeeded(artifact_ids=[uuid.uuid4()])])
    timeline.release_overdue(held_before=T0)
    assert _types(timeline) == ["task.submitted", "task.started", "task.succeeded"]
    assert timeline.terminal_seq == 3
    assert timeline.held == {}


def test_overdue_release_puts_non_terminal_events_first_by_occurred_at(
    task_events: Callable,
) -> None:
    t = task_events()
    submitted = t.submitted()
    step1, step2 = t.progressed(1), t.progressed(2)  # task.started was lost
    artifact = t.published()
    done = t.succeeded(steps=2, artifact_ids=[artifact.data.artifact_id])
    timeline = TaskTimeline(submitted.metadata.task_id, "acme")
    _offer(timeline, [submitted])
    _offer(timeline, [done, step2], now=T0)
    _offer(timeline, [artifact, step1], now=T0 + timedelta(seconds=20))  # not overdue yet
    timeline.release_overdue(held_before=T0 + timedelta(seconds=5))
    # The terminal is overdue: every held non-terminal goes before it, or it would be late.
    assert _ids(timeline) == [
        e.metadata.event_id for e in [submitted, step1, step2, artifact, done]
    ]
    assert timeline.changes.late == []


def test_a_forced_event_never_lets_the_terminal_overtake_other_overdue_events(
    task_events: Callable,
) -> None:
    t = task_events()
    submitted = t.submitted()
    artifact = t.published()  # waits for task.started, which was lost
    stray_step = t.progressed(1)  # likewise
    cancelled = t.cancelled(attempt=0, steps=0)
    cancelled = cancelled.model_copy(
        update={
            "data": cancelled.data.model_copy(update={"artifact_ids": [artifact.data.artifact_id]})
        }
    )
    timeline = TaskTimeline(submitted.metadata.task_id, "acme")
    _offer(timeline, [submitted])
    _offer(timeline, [cancelled, stray_step, artifact], now=T0)
    timeline.release_overdue(held_before=T0)
    # forcing the artifact satisfies the terminal; the stray step must still go before it
    assert _ids(timeline) == [
        e.metadata.event_id for e in [submitted, artifact, stray_step, cancelled]
    ]
    assert timeline.changes.late == []


def test_a_forced_event_releases_followers_but_forces_nothing_else(
    task_events: Callable,
) -> None:
    t = task_events()
    started = t.started()  # task.submitted was lost
    step1, step3 = t.progressed(1), t.progressed(3)  # step 2 was lost
    timeline = TaskTimeline(started.metadata.task_id, "acme")
    _offer(timeline, [started], now=T0)
    _offer(timeline, [step1, step3], now=T0 + timedelta(seconds=20))
    timeline.release_overdue(held_before=T0 + timedelta(seconds=5))
    # started is forced; step 1 then has its predecessor; step 3 is not overdue and waits
    assert _ids(timeline) == [started.metadata.event_id, step1.metadata.event_id]
    assert list(timeline.held) == [step3.metadata.event_id]


def test_changes_name_only_previously_stored_held_events_as_released(
    task_events: Callable,
) -> None:
    t = task_events()
    submitted, started = t.submitted(), t.started()
    stored = TaskTimeline(submitted.metadata.task_id, "acme")
    _offer(stored, [started])
    reloaded = TaskTimeline(submitted.metadata.task_id, "acme", held=list(stored.held.values()))
    step = t.progressed(1)
    _offer(reloaded, [step, submitted])
    assert reloaded.changes.released == [started.metadata.event_id]
    assert reloaded.changes.newly_held == []
    assert _types(reloaded) == ["task.submitted", "task.started", "task.progressed"]


# --- human input: a question, its answer, and the attempt that resumes ----------------------


def _asking_run(task_events: Callable) -> list[DomainEvent]:
    """Attempt 1 asks in step 2 and waits; attempt 2 resumes after the answer with step 3,
    which writes the artifact, and succeeds."""
    events = task_events()
    question = uuid.uuid4()
    artifact = uuid.uuid4()
    run = [
        events.submitted(),
        events.started(),
        events.progressed(1),
        events.progressed(2),
        events.input_requested(question, attempt=1, step=2),
        events.input_provided(question),
        events.resumed(2, question, step=2),
        events.progressed(3, attempt=2),
        events.published(artifact, attempt=2, step=3),
        events.succeeded(attempt=2, steps=3, artifact_ids=[artifact]),
    ]
    return run


def _read(run: list[DomainEvent], order: Iterable[DomainEvent]) -> list[str]:
    timeline = TaskTimeline(run[0].metadata.task_id, "acme")
    _offer(timeline, order)
    by_id = {e.metadata.event_id: e for e in run}
    return [_label(by_id[event_id]) for event_id in _ids(timeline)]


@pytest.mark.parametrize("seed", range(40))
def test_a_run_that_waited_for_input_reads_in_causal_order_whatever_the_arrival(
    task_events: Callable, seed: int
) -> None:
    run = _asking_run(task_events)
    shuffled = list(run)
    random.Random(seed).shuffle(shuffled)

    assert _read(run, shuffled) == [_label(e) for e in run]


def test_the_answer_waits_for_its_question_and_the_resumed_attempt_for_the_answer(
    task_events: Callable,
) -> None:
    run = _asking_run(task_events)
    submitted, started, step1, step2, asked, answered, resumed, step3, *_ = run

    assert _read(run, [submitted, started, step1, answered, resumed, step3]) == [
        "task.submitted",
        "task.started(1)",
        "task.progressed(1,1)",
    ]
    assert _read(run, [submitted, started, step1, answered, resumed, step3, step2, asked]) == [
        _label(e) for e in run[:8]
    ]


def test_a_task_cancelled_while_waiting_ends_after_its_question(task_events: Callable) -> None:
    events = task_events()
    question = uuid.uuid4()
    run = [
        events.submitted(),
        events.started(),
        events.progressed(1),
        events.input_requested(question, attempt=1, step=1),
        events.cancel_requested(),
        events.cancelled(attempt=1, steps=1),
    ]
    assert _read(run, reversed(run))[-1] == "task.cancelled"
    assert sorted(_read(run, reversed(run))) == sorted(_label(e) for e in run)
