"""Settings of the model providers, mixed into AgentSettings."""

from __future__ import annotations

from pydantic import BaseModel


class ProviderSettings(BaseModel):
    """RELAY_LLM_PROVIDER and what each provider needs (credentials, region, model ids)."""
