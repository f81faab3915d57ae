"""The one error the local stack raises for problems a person has to fix."""

from __future__ import annotations


class StackError(Exception):
    """Something stops the stack from starting or running; the message says what to do.

    ``services`` names the processes whose logs explain it, so a caller can show their tails.
    """

    def __init__(self, message: str, *, services: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.services = services
