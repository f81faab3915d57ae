"""``python -m gateway``: serve the public API."""

from __future__ import annotations

from gateway.settings import GatewaySettings
from relay_shared.http import serve

if __name__ == "__main__":
    serve("gateway.app:create_app", GatewaySettings())
