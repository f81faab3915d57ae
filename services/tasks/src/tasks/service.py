"""The tasks use cases: intake (with idempotency), queries, cancel requests, and applying
lifecycle events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from opentelemetry import metrics

from relay_shared.backoff import Backoff
from relay_shared.events import (
    DomainEvent,
    TaskCancelRequested,
    TaskCancelRequestedData,
    TaskInputProvided,
    TaskInputProvidedData,
    TaskSubmitted,
    TaskSubmittedData,
)
from relay_shared.publisher import EventTooLarge
from tasks import lifecycle
from tasks.cursor import decode_cursor, encode_cursor
from tasks.errors import (
    AnswerTooLarge,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    QuotaExceeded,
    TaskAlreadyFinished,
    TaskNotFound,
    TaskNotWaiting,
    TaskTooLarge,
)
from tasks.lifecycle import TaskState, TaskStatus
from tasks.models import (
    IdempotencyClaim,
    InputRequest,
    IntakeRules,
    NewTask,
    PagePosition,
    Quota,
    Task,
    TaskPage,
    TaskRequest,
    TenantUsage,
)
from tasks.ports import TaskStore, TaskTransaction, utc_now


@dataclass(frozen=True)
class Submission:
    task: Task
    replayed: bool  # True when an Idempotency-Key answered with the task it created before


# A slot frees when a task finishes: no time to promise, so a short, fixed wait.
ACTIVE_TASKS_RETRY_AFTER_SECONDS = 10


def _check_quota(quota: Quota, usage: TenantUsage) -> None:
    """Raise QuotaExceeded for the first quota ``usage`` has reached."""
    if quota.active_tasks is not None and usage.active_tasks >= quota.active_tasks:
        raise QuotaExceeded(
            "active_tasks",
            f"This tenant may have {quota.active_tasks} unfinished tasks at a time and has "
            f"{usage.active_tasks}; wait for one to finish or cancel one.",
            retry_after_seconds=ACTIVE_TASKS_RETRY_AFTER_SECONDS,
        )
    if quota.daily_spend_usd is not None and usage.spend_usd >= quota.daily_spend_usd:
        raise QuotaExceeded(
            "daily_spend",
            f"This tenant's tasks of today (UTC) have spent an estimated "
            f"${usage.spend_usd:.4f} of its ${quota.daily_spend_usd:g} daily quota.",
            retry_after_seconds=usage.seconds_left_today,
        )
    if quota.daily_tokens is not None and usage.tokens >= quota.daily_tokens:
        raise QuotaExceeded(
            "daily_tokens",
            f"This tenant's tasks of today (UTC) have used {usage.tokens} of its "
            f"{quota.daily_tokens} daily tokens.",
            retry_after_seconds=usage.seconds_left_today,
        )


class TaskIntake:
    def __init__(
        self,
        store: TaskStore,
        *,
        rules: IntakeRules,
        idempotency_ttl: timedelta,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._store = store
        self._rules = rules
        self._idempotency_ttl = idempotency_ttl
        self._clock = clock

    def read_request(self, body: bytes) -> TaskRequest:
        """The request body, validated against this service's rules (raises ValidationError)."""
        return TaskRequest.parse(body, self._rules)

    async def submit(
        self,
        tenant_id: str,
        request: TaskRequest,
        *,
        idempotency_key: str | None = None,
        quota: Quota | None = None,
    ) -> Submission:
        """Accept a task, unless the tenant is over a quota (QuotaExceeded: nothing stored). A
        repeated Idempotency-Key answers with its task, whatever the quotas say now."""
        new = request.with_defaults(self._rules)
        quota = quota or Quota()
        if idempotency_key is None and not quota.any:
            # nothing to read or hold first: the task and its event go in one statement
            task, submitted = self._new_task(tenant_id, new)
            with _too_large():
                await self._store.insert_task(task, submitted)
            return Submission(task, replayed=False)
        async with self._store.transaction() as tx:
            if idempotency_key is None:
                return Submission(await self._accept(tx, tenant_id, new, quota), replayed=False)
            return await self._submit_once(tx, tenant_id, new, idempotency_key, quota)

    async def _submit_once(
        self, tx: TaskTransaction, tenant_id: str, new: NewTask, key: str, quota: Quota
    ) -> Submission:
        # The lock serialises requests that share a key; a request that cannot take it at once
        # runs beside the original, which has not committed yet, so it can only be told to retry.
        # (The lookup is a statement of its own: one taken with the lock would read from before
        # it, and miss the record of a transaction that committed meanwhile.)
        if not await tx.try_lock_idempotency_key(tenant_id, key):
            raise IdempotencyKeyInFlight
        request_hash = new.request_hash()
        record = await tx.idempotency_record(tenant_id, key)
        if record is None:
            claim = IdempotencyClaim(key, request_hash, self._idempotency_ttl)
            task = await self._accept(tx, tenant_id, new, quota, key=claim)
            return Submission(task, replayed=False)
        if record.request_hash != request_hash:
            raise IdempotencyKeyReused
        original = await tx.task(tenant_id, record.task_id)
        if original is None:  # a foreign key rules this out; fail loudly rather than re-create
            raise LookupError(f"idempotency key refers to missing task {record.task_id}")
        return Submission(original, replayed=True)

    async def _accept(
        self,
        tx: TaskTransaction,
        tenant_id: str,
        new: NewTask,
        quota: Quota,
        *,
        key: IdempotencyClaim | None = None,
    ) -> Task:
        if quota.any:
            _check_quota(quota, await tx.tenant_usage(tenant_id))
        task, submitted = self._new_task(tenant_id, new)
        with _too_large():
            await tx.insert_task(task, submitted, key=key)
        return task

    def _new_task(self, tenant_id: str, new: NewTask) -> tuple[Task, TaskSubmitted]:
        now = self._clock()
        task = Task(
            id=uuid4(),
            tenant_id=tenant_id,
            prompt=new.prompt,
            model=new.model,
            metadata=dict(new.metadata),
            limits=new.limits,
            created_at=now,
            updated_at=now,
            state=TaskState(),
        )
        submitted = TaskSubmitted.create(
            TaskSubmittedData(
                prompt=new.prompt, model=new.model, metadata=new.metadata, limits=new.limits
            ),
            tenant_id=tenant_id,
            task_id=task.id,
            occurred_at=now,
        )
        return task, submitted


@contextmanager
def _too_large() -> Iterator[None]:
    try:
        yield
    except EventTooLarge as exc:
        raise TaskTooLarge from exc


class TaskQueries:
    def __init__(self, store: TaskStore) -> None:
        self._store = store

    async def get(self, tenant_id: str, task_id: UUID) -> Task:
        async with self._store.reads() as tx:
            task = await tx.task(tenant_id, task_id)
        if task is None:
            raise TaskNotFound
        return task

    async def page(
        self, tenant_id: str, *, status: TaskStatus | None, limit: int, cursor: str | None
    ) -> TaskPage:
        after = decode_cursor(cursor) if cursor is not None else None
        async with self._store.reads() as tx:
            # one extra row tells whether another page follows
            tasks = await tx.tasks(tenant_id, status=status, after=after, limit=limit + 1)
        if len(tasks) <= limit:
            return TaskPage(tasks=tasks, next_cursor=None)
        last = tasks[limit - 1]
        return TaskPage(
            tasks=tasks[:limit],
            next_cursor=encode_cursor(PagePosition(created_at=last.created_at, id=last.id)),
        )


class TaskCancellation:
    """A client's cancel request: the task moves to cancelling and the agent is told, once."""

    def __init__(self, store: TaskStore) -> None:
        self._store = store

    async def request(self, tenant_id: str, task_id: UUID, *, reason: str | None) -> Task:
        async with self._store.transaction() as tx:
            # the row lock makes concurrent requests queue here: only the first one publishes
            before = await tx.lock_state(tenant_id, task_id)
            if before is None:
                raise TaskNotFound
            if before.terminal:
                raise TaskAlreadyFinished(before.status.value)
            after = lifecycle.request_cancel(before)
            if after != before:
                await tx.save_state(tenant_id, task_id, after)
                await tx.publish(
                    TaskCancelRequested.create(
                        TaskCancelRequestedData(reason=reason), tenant_id=tenant_id, task_id=task_id
                    )
                )
            task = await tx.task(tenant_id, task_id)
        assert task is not None  # locked above, so still there
        return task


# How an early answer looks again for its question (see TaskInput): soon at first (the record
# is usually a fraction of a second behind), then less often, so that a client naming questions
# that never come costs a dozen reads in the catch-up window, not a hundred.
CATCH_UP_POLLS = Backoff(initial=0.02, maximum=0.5, jitter=False)


class QuestionNotRecordedYet(Exception):
    """An answer names a question the record has not applied (yet) while the task runs."""

    def __init__(self, status: TaskStatus) -> None:
        super().__init__(status.value)
        self.status = status


def _may_not_have_recorded(state: TaskState, question_id: UUID | None) -> bool:
    """Whether the named question may be on its way to the record: the task runs (or has not
    been seen to start) and the question is not the one it was last answered on. An answer
    without a question id, or to a question answered already, is refused at once."""
    return (
        question_id is not None
        and question_id != state.answered
        and state.status in (TaskStatus.QUEUED, TaskStatus.RUNNING)
    )


class TaskInput:
    """A client's answer to the question a waiting task asked: the task runs again and the agent
    is told (task.input_provided), once; any other answer is refused and changes nothing.

    The record applies the agent's task.input_requested from this service's own queue, so it
    can lag the timeline (and a webhook) that already show the question: an answer naming a
    question the record has not seen, for a task that runs, waits up to ``catch_up_seconds``
    for the record to catch up instead of being refused at once."""

    def __init__(self, store: TaskStore, *, max_chars: int, catch_up_seconds: float) -> None:
        self._store = store
        self._max_chars = max_chars
        self._catch_up_seconds = catch_up_seconds

    def read_request(self, body: bytes) -> InputRequest:
        """The answer, validated (ValidationError); AnswerTooLarge over the length limit."""
        answer = InputRequest.parse(body)
        if len(answer.text) > self._max_chars:
            raise AnswerTooLarge(self._max_chars)
        return answer

    async def provide(self, tenant_id: str, task_id: UUID, answer: InputRequest) -> Task:
        deadline = time.monotonic() + self._catch_up_seconds
        looks = 0
        while True:
            try:
                return await self._provide(tenant_id, task_id, answer)
            except QuestionNotRecordedYet as early:
                looks += 1
                if time.monotonic() >= deadline:
                    raise TaskNotWaiting(
                        early.status.value,
                        f"The task is {early.status.value} and has not asked question"
                        f" {answer.question_id} (or its question has not reached this service"
                        f" within {self._catch_up_seconds:g} s).",
                    ) from None
            # no lock is held meanwhile: the consumer needs the row to apply the question
            await asyncio.sleep(min(CATCH_UP_POLLS.delay(looks), deadline - time.monotonic()))

    async def _provide(self, tenant_id: str, task_id: UUID, answer: InputRequest) -> Task:
        async with self._store.transaction() as tx:
            # the row lock queues concurrent answers here: the first one wins, the rest get 409
            before = await tx.lock_state(tenant_id, task_id)
            if before is None:
                raise TaskNotFound
            question = before.question
            if before.status is not TaskStatus.WAITING_FOR_INPUT or question is None:
                if _may_not_have_recorded(before, answer.question_id):
                    raise QuestionNotRecordedYet(before.status)
                raise TaskNotWaiting(before.status.value)
            if answer.question_id is not None and answer.question_id != question.id:
                raise TaskNotWaiting(
                    before.status.value,
                    f"The task waits on question {question.id}, not {answer.question_id}.",
                )
            waited = await tx.task(tenant_id, task_id)
            assert waited is not None  # locked above
            limits = waited.limits
            if limits is not None and limits.max_wait_seconds is not None:
                # the agent fails the task for input_timeout from then on: too late to resume it
                ended = question.asked_at + timedelta(seconds=limits.max_wait_seconds)
                if datetime.now(UTC) >= ended:
                    raise TaskNotWaiting(
                        before.status.value,
                        f"The wait for an answer ended at {ended.isoformat()}"
                        f" (max_wait_seconds {limits.max_wait_seconds:g}); the task is failing"
                        " with input_timeout.",
                    )
            await tx.save_state(tenant_id, task_id, lifecycle.provide_input(before))
            await tx.publish(
                TaskInputProvided.create(
                    TaskInputProvidedData(question_id=question.id, text=answer.text),
                    tenant_id=tenant_id,
                    task_id=task_id,
                )
            )
            task = await tx.task(tenant_id, task_id)
        assert task is not None  # locked above, so still there
        return task


class UnknownTask(LookupError):
    """A lifecycle event for a task this service does not hold."""


class TaskLifecycle:
    """Applies agent lifecycle events to the task they report on, exactly once each."""

    def __init__(self, store: TaskStore) -> None:
        self._store = store

    async def record(self, event: DomainEvent) -> None:
        tenant_id, task_id = event.metadata.tenant_id, event.metadata.task_id
        async with self._store.transaction() as tx:
            claimed = await tx.claim_locking(event)
            if not claimed.first:
                return  # handled before: a redelivery or a duplicate
            before = claimed.state
            if before is None:
                # raising rolls back the claim, so the message is retried and ends in the DLQ
                raise UnknownTask(f"{event.name} {event.metadata.event_id} for task {task_id}")
            after = lifecycle.apply(before, event)
            if after != before:
                await tx.save_state(tenant_id, task_id, after)
        if after.terminal and not before.terminal:
            record_finished(after)


TASK_DURATION = metrics.get_meter("relay").create_histogram(
    "relay.task.duration",
    unit="s",
    description="A task's run, from its start to its terminal event, by outcome.",
)


def record_finished(state: lifecycle.TaskState) -> None:
    if state.started_at is not None and state.finished_at is not None:
        seconds = (state.finished_at - state.started_at).total_seconds()
        TASK_DURATION.record(max(0.0, seconds), {"relay.task.outcome": state.status.value})


@dataclass(frozen=True)
class TaskService:
    """The use cases, built once by the composition root."""

    intake: TaskIntake
    queries: TaskQueries
    cancellation: TaskCancellation
    input: TaskInput
    lifecycle: TaskLifecycle
