"""``python -m artifacts``: serve the artifacts service."""

from __future__ import annotations

from artifacts.settings import ArtifactsSettings
from relay_shared.http import serve

if __name__ == "__main__":
    serve("artifacts.app:create_app", ArtifactsSettings())
