"""moto server whose public port opens only once the stack has built its topology.

moto keeps everything in memory, so a moto that restarts comes back empty and the stack builds
the topology again. If the services could reach it meanwhile, an outbox relay could publish into
a bus whose rules do not exist yet, and EventBridge drops an event that no rule matches: a lost
event that the relay counts as published. So the process serves the same moto app on two ports:
a private one at once, through which the stack builds the topology, and the public one (the
services' endpoint) from the moment the stack sends SIGUSR1. Until then a service's calls fail
to connect and its relay retries them later, which loses nothing.

Both ports are served by waitress, not by werkzeug's development server (what `python -m
moto.server` uses): werkzeug answers every request with `Connection: close`, so each AWS call a
service makes would open a TCP connection and start a server thread. AWS keeps a client's
connections alive; so does this (ADR 0025).

Two of moto's costs that AWS does not have are taken off the shared cores (ADR 0027): its
EventBridge parses the same few JSON paths (building a parser each time) for every event and
target, and its ReceiveMessage computes every attribute of the queue, counts over all of its
messages included, for each message it returns.

    python -m relay_ops.stack.moto_door --host H --port PUBLIC --private-port PRIVATE
    python -m relay_ops.stack.moto_door --host H --port PORT    # no door: open at once
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import threading
from typing import Any

import jsonpath_ng.ext
import jsonpath_ng.ext.parser
from moto.core.utils import unix_time
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.sqs.models import Message, SQSBackend
from waitress.server import create_server

OPEN = signal.SIGUSR1

# Requests run on a pool of threads; idle keep-alive connections hold none. Every consumer keeps
# one long poll (ReceiveMessage, up to 20 s) in a thread: a stack has about six, and a busy one
# a few dozen calls at once besides (10 connections per client, ~15 clients).
THREADS = 64
CONNECTIONS = 1000  # open connections, idle ones included (waitress's default is 100)


def parse_json_paths_once() -> None:
    """moto formats every event for every rule target with the default input template, whose
    eight JSON paths (``$.detail``, ...) it parses with ``jsonpath_ng.ext.parse`` each time;
    that builds a PLY parser (its tables) per call: over half of moto's CPU for a PutEvents.
    A parsed path is only read (``find``), so one per distinct path is kept. moto imports
    ``parse`` from the module at each call, so it gets this one."""
    parse = functools.lru_cache(maxsize=1024)(jsonpath_ng.ext.parser.parse)
    jsonpath_ng.ext.parse = parse  # type: ignore[attr-defined]  # re-exported, not declared


def read_retention_directly() -> None:
    """moto's ReceiveMessage checks each message it returns against the queue's retention
    period, read through ``get_queue_attributes``, which builds every attribute of the queue
    (three counts over all of its messages among them) to look one up: a receive costs the
    received times the queued messages. The check reads the queue's period itself."""

    def is_valid(self: SQSBackend, queue_name: str, message: Message) -> bool:
        queue = self.get_queue(queue_name)
        # set from the queue's attributes (Queue._set_attributes), an int
        retention_seconds: int = queue.message_retention_period  # type: ignore[attr-defined]
        sent_seconds = (message.sent_timestamp or 0) / 1000
        return retention_seconds + sent_seconds > unix_time()

    SQSBackend.is_message_valid_based_on_retention_period = is_valid  # type: ignore[method-assign]


def _serve(host: str, port: int, app: Any) -> None:
    server = create_server(
        app, host=host, port=port, threads=THREADS, connection_limit=CONNECTIONS, ident="moto"
    )
    threading.Thread(target=server.run, name=f"moto-{port}", daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="the services' endpoint")
    parser.add_argument(
        "--private-port", type=int, help="the stack's, on 127.0.0.1; without it PORT opens at once"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))  # moto's own URLs name the public port

    opened = threading.Event()
    stopping = threading.Event()
    signal.signal(OPEN, lambda *_: opened.set())
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())

    parse_json_paths_once()
    read_retention_directly()
    app = DomainDispatcherApplication(create_backend_app)  # one app, one in-memory AWS
    if args.private_port is None:
        opened.set()
    else:
        _serve("127.0.0.1", args.private_port, app)
        print(f"moto: private endpoint on 127.0.0.1:{args.private_port}", flush=True)
    while not (opened.is_set() or stopping.is_set()):
        opened.wait(0.2)
    if not stopping.is_set():
        _serve(args.host, args.port, app)
        print(f"moto: open on {args.host}:{args.port}", flush=True)
    while not stopping.is_set():
        stopping.wait(0.1)
    # moto's state is in memory and goes with the process: nothing to hand over, so the serving
    # threads (daemons) end with it, long polls included, rather than being waited for.


if __name__ == "__main__":
    main()
