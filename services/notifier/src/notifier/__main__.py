"""``python -m notifier``: serve the notifier."""

from __future__ import annotations

from notifier.settings import NotifierSettings
from relay_shared.http import serve

if __name__ == "__main__":
    serve("notifier.app:create_app", NotifierSettings())
