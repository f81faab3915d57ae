"""The local stack's configuration: one object, read from ``RELAY_STACK_*`` (and the two
conventional connection strings), so a second stack can run beside the first on other ports."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from relay_ops.stack.moto import free_port

# Start order: the workers first, the gateway (the only public entry) last. Stop is the reverse.
SERVICES: tuple[str, ...] = ("tasks", "artifacts", "notifier", "agent", "gateway")
# The gateway calls these over internal HTTP; each URL reaches it as RELAY_<NAME>_URL.
GATEWAY_UPSTREAMS: tuple[str, ...] = ("tasks", "artifacts", "notifier")
# The web console's build (`npm run build` in console/, which `make install` runs); the gateway
# serves it at /console/.
CONSOLE_DIST = Path(__file__).resolve().parents[4] / "console" / "dist"


class StackConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RELAY_STACK_", extra="ignore", frozen=True)

    env: str = Field(default="local", description="Deployment name: bus relay-<env>, queues ...")
    host: str = Field(default="127.0.0.1", description="Interface every local process binds.")
    gateway_port: int = Field(default=8000, ge=1, le=65535)
    tasks_port: int = Field(default=8101, ge=1, le=65535)
    agent_port: int = Field(default=8102, ge=1, le=65535)
    notifier_port: int = Field(default=8103, ge=1, le=65535)
    artifacts_port: int = Field(default=8104, ge=1, le=65535)
    moto_port: int = Field(default=5055, ge=1, le=65535)
    state_dir: Path = Field(
        default=Path(".relay"), description="Logs, pid files, throwaway databases."
    )
    grace_seconds: float = Field(
        default=20.0, gt=0, description="How long a process may take to stop before SIGKILL."
    )
    restart_initial_seconds: float = Field(
        default=1.0, gt=0, description="First wait before restarting a crashed program."
    )
    restart_max_seconds: float = Field(
        default=30.0, gt=0, description="The restart wait doubles up to this."
    )
    restart_reset_after_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Up this long, a program's next restart waits the first wait.",
    )
    startup_timeout_seconds: float = Field(
        default=120.0, gt=0, description="How long every service may take to be ready (/readyz)."
    )
    aws_region: str = "us-east-1"
    aws_endpoint_url: str | None = Field(
        default=None,
        description="An AWS endpoint that is already running (e.g. a moto server Terraform's"
        " envs/local was applied to): the stack starts no moto of its own.",
    )
    bootstrap: bool = Field(
        default=True,
        description="Build the topology from contracts/routing.yaml; false: it must exist"
        " already (Terraform made it) and is only checked.",
    )
    database_url: SecretStr = Field(
        default=SecretStr("postgresql://postgres@127.0.0.1:5432/relay"),
        validation_alias=AliasChoices("RELAY_STACK_DATABASE_URL", "DATABASE_URL"),
    )
    redis_url: SecretStr = Field(
        default=SecretStr("redis://127.0.0.1:6379/0"),
        validation_alias=AliasChoices("RELAY_STACK_REDIS_URL", "REDIS_URL"),
    )
    redis_secure: bool = Field(
        default=False,
        description="Start a Redis of the stack's own with AUTH (a random password) and TLS "
        "only, as a deployment runs it, instead of using the one at REDIS_URL.",
    )

    @field_validator("state_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # Resolved once, so a later chdir cannot move the stack's files.
        return value.expanduser().resolve()

    @classmethod
    def on_free_ports(cls, **overrides: Any) -> Self:
        """A configuration whose six ports are free now: for a second stack beside the first."""
        ports = {f"{name}_port": free_port() for name in (*SERVICES, "moto")}
        return cls(**{**ports, **overrides})

    def port(self, service: str) -> int:
        port: int = getattr(self, f"{service}_port")
        return port

    def url(self, service: str) -> str:
        return f"http://{self.host}:{self.port(service)}"

    @property
    def runs_moto(self) -> bool:
        """Whether the stack starts its own moto server (not when given an AWS endpoint)."""
        return self.aws_endpoint_url is None

    @property
    def moto_endpoint(self) -> str:
        """The AWS endpoint every service uses: the stack's own moto, or the given one."""
        return self.aws_endpoint_url or self.url("moto")

    @property
    def gateway_url(self) -> str:
        return self.url("gateway")

    @property
    def console_url(self) -> str:
        """The web console, served by the gateway (Vite's base is /console/)."""
        return f"{self.gateway_url}/console/"

    @property
    def console_origins(self) -> tuple[str, ...]:
        """Where a browser opens the console from: the artifacts bucket lets them read (CORS)."""
        localhost = f"http://localhost:{self.gateway_port}"
        return tuple(dict.fromkeys((self.gateway_url, localhost)))

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def telemetry_dir(self) -> Path:
        """Spans and metrics as JSON lines, one file each per service (`relay trace`)."""
        return self.state_dir / "telemetry"

    @property
    def webhooks_keys_file(self) -> Path:
        """The notifier's Fernet keys (RELAY_WEBHOOKS_ENCRYPTION_KEYS), made at the first start
        and kept, unlike the throwaway stores: endpoint secrets a database keeps stay readable
        across restarts."""
        return self.state_dir / "keys" / "webhooks-encryption-keys"

    @property
    def stack_file(self) -> Path:
        """Where a running stack records its addresses, for `relay admin` in another shell."""
        return self.run_dir / "stack.json"


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))
