"""A stand-in for one Relay service, run as a real process by the stack tests: it answers
/healthz and /readyz like a service and /wiring with what the stack put in its environment
(never a key).

Usage: python standin_service.py NAME [--crash] [--ready-after SECONDS]
(``--ready-after``: /readyz answers 503 "starting" for that long, as a service waiting for a
dependency does.)
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WIRING = (
    "RELAY_ENV",
    "RELAY_HTTP_PORT",
    "DATABASE_URL",
    "REDIS_URL",
    "RELAY_AWS_ENDPOINT_URL",
    "RELAY_ARTIFACTS_BUCKET",
    "AWS_ACCESS_KEY_ID",
    "AWS_REGION",
    "RELAY_TASKS_URL",
    "RELAY_ARTIFACTS_URL",
    "RELAY_NOTIFIER_URL",
    "RELAY_LOG_LEVEL",
    "RELAY_INTERNAL_AUTH_JWKS_SECRET_ID",
    "RELAY_INTERNAL_AUTH_PRIVATE_KEY_SECRET_ID",
    "RELAY_WEBHOOKS_ALLOW_PRIVATE",
)


def main() -> None:
    name = sys.argv[1]
    if "--crash" in sys.argv:
        print(f"{name}: failing on purpose", flush=True)
        raise SystemExit(3)
    ready_at = time.monotonic()
    if "--ready-after" in sys.argv:
        ready_at += float(sys.argv[sys.argv.index("--ready-after") + 1])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body: dict[str, object]
            status = 200
            if self.path == "/healthz":
                body = {"status": "ok", "service": name}
            elif self.path == "/readyz":
                ready = time.monotonic() >= ready_at
                status = 200 if ready else 503
                detail = "ready" if ready else "waiting for PostgreSQL"
                body = {
                    "status": "ready" if ready else "starting",
                    "service": name,
                    "checks": {"startup": {"ok": ready, "detail": detail}},
                }
            elif self.path == "/wiring":
                body = {key: os.environ.get(key) for key in WIRING}
                body["has_private_key"] = "RELAY_INTERNAL_AUTH_PRIVATE_KEY" in os.environ
                body["has_public_key"] = bool(os.environ.get("RELAY_INTERNAL_AUTH_PUBLIC_KEY"))
                body["has_webhooks_keys"] = "RELAY_WEBHOOKS_ENCRYPTION_KEYS" in os.environ
            else:
                self.send_error(404)
                return
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: object) -> None:
            print(f"{name}: {format % args}", flush=True)

    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["RELAY_HTTP_PORT"])), Handler)
    signal.signal(signal.SIGTERM, _exit)
    print(f"{name}: listening", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def _exit(*_: object) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    main()
