"""An OTLP/HTTP sink standing in for the OpenTelemetry collector in `make compose-smoke`.

Every POST (traces, metrics, logs) is answered 200 with an empty protobuf body, which is a
valid, fully accepted Export*ServiceResponse, and noted as one JSON line in the traces volume.
"""

import json
import os
import signal
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CONFIG = Path("/etc/otelcol-contrib/config.yaml")  # mounted by docker-compose.yml
OUT = Path(os.environ.get("OTLP_SINK_OUT", "/traces/stand-in.jsonl"))


class Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        size = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(size)
        line = {
            "at": time.time(),
            "path": self.path,
            "bytes": size,
            "content_type": self.headers.get("Content-Type"),
        }
        with OUT.open("a") as out:
            out.write(json.dumps(line) + "\n")
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def stop(signum: int, frame: object) -> None:
    raise SystemExit(0)  # PID 1 ignores SIGTERM unless it handles it


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, stop)
    print(
        f"otlp-sink: config {'mounted' if CONFIG.is_file() else 'MISSING'}; writing {OUT}",
        flush=True,
    )
    OUT.touch()  # fails at once when the traces volume is not writable by this uid
    ThreadingHTTPServer(("0.0.0.0", 4318), Sink).serve_forever()  # noqa: S104 (a container)
