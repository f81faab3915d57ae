"""Settings of the model providers, mixed into AgentSettings (all ``RELAY_*`` unless noted)."""

from __future__ import annotations

from pydantic import AliasChoices, BaseModel, Field, SecretStr, model_validator

ANTHROPIC = "anthropic"
SCRIPTED = "scripted"


class ProviderSettings(BaseModel):
    """RELAY_LLM_PROVIDER and what each provider needs (credentials, region, model ids)."""

    llm_provider: str = Field(
        default="",
        description="anthropic | bedrock | vertex | scripted; unset: anthropic when an Anthropic"
        " key is configured, else scripted.",
    )

    # anthropic: the key, from Secrets Manager in the cloud or the environment locally
    anthropic_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ANTHROPIC_API_KEY", "RELAY_ANTHROPIC_API_KEY")
    )
    anthropic_api_key_secret_id: str | None = Field(
        default=None, description="Secrets Manager id of the key: raw, or JSON {api_key}."
    )
    anthropic_api_key_refresh_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often the key's secret is re-read: a rotated key is used from the next "
        "read on, without a restart.",
    )
    anthropic_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("ANTHROPIC_BASE_URL", "RELAY_ANTHROPIC_BASE_URL"),
    )

    # bedrock: AWS credentials come from the standard chain
    bedrock_region: str | None = Field(default=None, description="Defaults to AWS_REGION.")
    bedrock_base_url: str | None = Field(default=None, description="Tests, VPC endpoints.")
    bedrock_aws_profile: str | None = Field(
        default=None, description="A named AWS profile for Bedrock alone (local runs)."
    )

    # vertex: Google application default credentials
    vertex_project_id: str | None = None
    vertex_region: str | None = None
    vertex_base_url: str | None = Field(default=None, description="Tests, private endpoints.")
    vertex_access_token: SecretStr | None = Field(
        default=None, description="A ready OAuth token instead of ADC (tests)."
    )

    # client-facing model name -> the provider's model id, over the provider's defaults
    model_ids: dict[str, str] = Field(default_factory=dict)

    # every call has a deadline; the agent loop, not the SDK, retries
    provider_connect_timeout: float = Field(default=10.0, gt=0)
    provider_idle_timeout: float = Field(default=60.0, gt=0, description="Between stream chunks.")
    provider_call_timeout: float = Field(default=600.0, gt=0, description="Whole call.")

    @model_validator(mode="after")
    def _choose_provider(self) -> ProviderSettings:
        # frozen model: fill the derived default once, at construction, like the kit does
        name = self.llm_provider.strip().lower()
        if not name:
            has_key = self.anthropic_api_key is not None or bool(self.anthropic_api_key_secret_id)
            name = ANTHROPIC if has_key else SCRIPTED
        object.__setattr__(self, "llm_provider", name)
        return self
