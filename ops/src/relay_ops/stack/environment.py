"""The environment each service process starts with: the user's own (so RELAY_* options reach
the services), overlaid with the stack's wiring. Nothing here is ever printed."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from relay_ops.stack.config import CONSOLE_DIST, GATEWAY_UPSTREAMS, StackConfig
from relay_ops.stack.topology import jwks_secret_name, signing_key_secret_name

# Local only: every AWS client points at moto, so real credentials must not leak into it.
DUMMY_AWS_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
NOT_PASSED_THROUGH = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "RELAY_INTERNAL_AUTH_PRIVATE_KEY",  # only the gateway mints internal tokens
)
SIGNING_SERVICE = "gateway"
# Only the notifier holds webhook endpoint secrets, so only it gets the keys that seal them.
WEBHOOKS_SERVICE = "notifier"
WEBHOOKS_KEYS = "RELAY_WEBHOOKS_ENCRYPTION_KEYS"


@dataclass(frozen=True)
class Wiring:
    """What every service is pointed at; decided once per `relay up`."""

    config: StackConfig
    database_url: str  # the stack's own (admin) connection
    redis_url: str
    bucket: str
    private_key: str  # the services read its public half from the JWKS secret
    # the notifier's Fernet keys, kept in the state dir across starts (relay_ops.stack.keys)
    webhooks_encryption_keys: str
    # service -> its own role's URL (relay_ops.stack.roles); a service not in it gets the above
    service_database_urls: Mapping[str, str] = field(default_factory=dict)


def service_environment(
    service: str, wiring: Wiring, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    config = wiring.config
    env = {k: v for k, v in (os.environ if base is None else base).items()}
    for name in NOT_PASSED_THROUGH:
        env.pop(name, None)
    # A user's own keys (e.g. to try a rotation: new,old) reach the notifier, and no other.
    users_webhooks_keys = env.pop(WEBHOOKS_KEYS, "")
    # Half the stack's grace: the service drains its work well before the supervisor kills it.
    env.setdefault("RELAY_SHUTDOWN_GRACE_SECONDS", f"{config.grace_seconds / 2:g}")
    # spans for `relay trace` (a user's RELAY_OTLP_ENDPOINT sends them to a collector instead)
    env.setdefault("RELAY_TELEMETRY_DIR", str(config.telemetry_dir))
    env.update(DUMMY_AWS_CREDENTIALS)
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "RELAY_ENV": config.env,
            "RELAY_HTTP_HOST": config.host,
            "RELAY_HTTP_PORT": str(config.port(service)),
            # Both spellings: the RELAY_ one wins in the services' settings if a user set it.
            # Each service as its own role, owning its schema alone (relay_ops.stack.roles).
            "DATABASE_URL": wiring.service_database_urls.get(service, wiring.database_url),
            "RELAY_DATABASE_URL": wiring.service_database_urls.get(service, wiring.database_url),
            "REDIS_URL": wiring.redis_url,
            "RELAY_REDIS_URL": wiring.redis_url,
            "RELAY_AWS_ENDPOINT_URL": config.moto_endpoint,
            "AWS_REGION": config.aws_region,
            "AWS_DEFAULT_REGION": config.aws_region,
            "RELAY_AWS_REGION": config.aws_region,
            "RELAY_ARTIFACTS_BUCKET": wiring.bucket,
            # The keys, as a deployment keeps them: the trusted public keys in a JWKS secret
            # (moto's), re-read every few seconds here, so a rotation on a running stack works
            # as on AWS (docs/operations.md). A user's own refresh interval wins.
            "RELAY_INTERNAL_AUTH_JWKS_SECRET_ID": jwks_secret_name(config.env),
        }
    )
    env.setdefault("RELAY_INTERNAL_AUTH_KEY_REFRESH_SECONDS", "5")
    env.pop("RELAY_INTERNAL_AUTH_PUBLIC_KEY", None)
    if service == SIGNING_SERVICE:
        env["RELAY_INTERNAL_AUTH_PRIVATE_KEY"] = wiring.private_key
        env["RELAY_INTERNAL_AUTH_PRIVATE_KEY_SECRET_ID"] = signing_key_secret_name(config.env)
        for upstream in GATEWAY_UPSTREAMS:
            env[f"RELAY_{upstream.upper()}_URL"] = config.url(upstream)
        # The console at /console/ (a user's own build dir wins). Its CSP lets it read artifact
        # download links, which point at moto (or RELAY_S3_PUBLIC_ENDPOINT_URL) from the browser.
        env.setdefault("RELAY_CONSOLE_DIR", str(CONSOLE_DIST))
        storage = env.get("RELAY_S3_PUBLIC_ENDPOINT_URL") or config.moto_endpoint
        env.setdefault("RELAY_CONSOLE_STORAGE_ORIGIN", origin(storage))
    if service == WEBHOOKS_SERVICE:
        env[WEBHOOKS_KEYS] = users_webhooks_keys or wiring.webhooks_encryption_keys
        # Local receivers listen on 127.0.0.1, which a deployment refuses (DESIGN.md, Webhooks);
        # a user's own RELAY_WEBHOOKS_ALLOW_PRIVATE=false wins.
        env.setdefault("RELAY_WEBHOOKS_ALLOW_PRIVATE", "true")
    return env


def gateway_lambda_environment(
    config: StackConfig, *, database_url: str, redis_url: str, base: Mapping[str, str]
) -> dict[str, str]:
    """The environment of the gateway's Lambda entry point (gateway/lambda_http.py) serving
    this stack in-process, configured as Terraform configures the function: the stack's
    wiring, and the signing key only referenced, in moto's Secrets Manager."""
    env = {k: v for k, v in base.items() if k not in NOT_PASSED_THROUGH}
    env.update(
        {
            "RELAY_ENV": config.env,
            "RELAY_DATABASE_URL": database_url,
            "RELAY_REDIS_URL": redis_url,
            "RELAY_AWS_ENDPOINT_URL": config.moto_endpoint,
            "AWS_REGION": config.aws_region,
            "RELAY_AWS_REGION": config.aws_region,
            "RELAY_TELEMETRY_DIR": str(config.telemetry_dir),
            "RELAY_LAMBDA_SECRETS": json.dumps(
                {"RELAY_INTERNAL_AUTH_PRIVATE_KEY": signing_key_secret_name(config.env)}
            ),
            **{f"RELAY_{u.upper()}_URL": config.url(u) for u in GATEWAY_UPSTREAMS},
        }
    )
    return env


def origin(url: str) -> str:
    """scheme://host[:port] of ``url``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def console_link(config: StackConfig, base: Mapping[str, str] | None = None) -> str:
    """The console's URL, and whether there is a build to serve there."""
    env = os.environ if base is None else base
    built = Path(env.get("RELAY_CONSOLE_DIR") or CONSOLE_DIST) / "index.html"
    if built.is_file():
        return config.console_url
    return f"{config.console_url} (not built yet: `make install` builds console/)"
