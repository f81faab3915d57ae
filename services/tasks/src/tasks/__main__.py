"""``python -m tasks``: serve the tasks service."""

from __future__ import annotations

from relay_shared.http import serve
from tasks.settings import TasksSettings

if __name__ == "__main__":
    serve("tasks.app:create_app", TasksSettings())
