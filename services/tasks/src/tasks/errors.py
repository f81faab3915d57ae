"""What the tasks service answers when a request cannot be served (RFC 9457 problems)."""

from __future__ import annotations

import math

from relay_shared.problems import Problem


class TaskNotFound(Problem):
    # Also the answer for another tenant's task and for an id that is not a UUID: nothing leaks.
    def __init__(self) -> None:
        super().__init__(404, "Task not found", "No task with this id exists for this tenant.")


class IdempotencyKeyInFlight(Problem):
    def __init__(self) -> None:
        super().__init__(
            409,
            "Idempotency key in flight",
            "The original request with this Idempotency-Key is still being processed;"
            " retry it shortly.",
        )


class IdempotencyKeyReused(Problem):
    def __init__(self) -> None:
        super().__init__(
            422,
            "Idempotency key reused",
            "This Idempotency-Key was already used with a different request body;"
            " use a new key for a different task.",
        )


class InvalidCursor(Problem):
    def __init__(self) -> None:
        super().__init__(
            422,
            "Invalid cursor",
            "The cursor is not one this API returned; pass next_cursor from the previous page.",
        )


class TaskTooLarge(Problem):
    def __init__(self) -> None:
        super().__init__(
            422,
            "Task too large",
            "The prompt and metadata together exceed what one event can carry; shorten them.",
        )


class TaskAlreadyFinished(Problem):
    def __init__(self, status: str) -> None:
        super().__init__(
            409,
            "Task already finished",
            f"The task has already finished ({status}); only a queued or running task can be"
            " cancelled.",
            task_status=status,
        )


class QuotaExceeded(Problem):
    """A submit over one of the tenant's quotas (``limit`` names it); nothing is stored."""

    def __init__(self, limit: str, detail: str, *, retry_after_seconds: float) -> None:
        retry_after = max(1, math.ceil(retry_after_seconds))
        super().__init__(
            429,
            "Quota exceeded",
            f"{detail} Try again in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
            limit=limit,
        )


class TaskNotWaiting(Problem):
    """An answer for a task that waits for none (any more), or for another question."""

    def __init__(self, status: str, detail: str | None = None) -> None:
        super().__init__(
            409,
            "Task not waiting for input",
            detail
            or f"The task is {status}, not waiting_for_input: there is no question to answer"
            " (it may have been answered already).",
            task_status=status,
        )


class AnswerTooLarge(Problem):
    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            "Answer too large",
            f"The answer must be at most {limit} characters; shorten it.",
            limit=limit,
        )
