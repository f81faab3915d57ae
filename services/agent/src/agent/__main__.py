"""``python -m agent``: serve the agent (its HTTP side is only /healthz)."""

from __future__ import annotations

from agent.settings import AgentSettings
from relay_shared.http import serve

serve("agent.app:create_app", AgentSettings())
