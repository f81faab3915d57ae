"""moto server whose public port opens only once the stack has built its topology.

moto keeps everything in memory, so a moto that restarts comes back empty and the stack builds
the topology again. If the services could reach it meanwhile, an outbox relay could publish into
a bus whose rules do not exist yet, and EventBridge drops an event that no rule matches: a lost
event that the relay counts as published. So the process serves the same moto app on two ports:
a private one at once, through which the stack builds the topology, and the public one (the
services' endpoint) from the moment the stack sends SIGUSR1. Until then a service's calls fail
to connect and its relay retries them later, which loses nothing.

    python -m relay_ops.stack.moto_door --host H --port PUBLIC --private-port PRIVATE
    python -m relay_ops.stack.moto_door --host H --port PORT --open    # one port, open at once

The app is served by waitress, not by moto's own werkzeug development server: that one closes
the connection after every answer, so each AWS call of each service paid a TCP connect and moto
a new thread, a cost the services do not have on AWS, where their connections are kept alive.
Waitress keeps them alive (HTTP/1.1), on a fixed pool of threads large enough for every
consumer's long poll to wait in one (docs/adr/0023-moto-keep-alive.md).
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from waitress.server import BaseWSGIServer, MultiSocketServer, create_server

OPEN = signal.SIGUSR1
# A long poll (ReceiveMessage waiting up to 20 s) holds a thread while it waits: room for every
# service's consumers and the tests' own, with the rest for calls that answer at once.
THREADS = 64
CONNECTIONS = 1000  # kept-alive client connections (each service's pools, the tests' clients)


def _serve(host: str, port: int, app: Any) -> BaseWSGIServer | MultiSocketServer:
    server = create_server(
        app,
        map={},  # each server its own socket map, run by its own thread
        host=host,
        port=port,
        threads=THREADS,
        connection_limit=CONNECTIONS,
        asyncore_use_poll=True,  # no select() limit on file descriptors
        ident="moto",
    )
    threading.Thread(target=server.run, name=f"moto-{port}", daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="the services' endpoint")
    door = parser.add_mutually_exclusive_group(required=True)
    door.add_argument("--private-port", type=int, help="the stack's, on 127.0.0.1")
    door.add_argument("--open", action="store_true", help="no door: the port serves at once")
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))  # moto's own URLs name the public port

    opened = threading.Event()
    stopping = threading.Event()
    signal.signal(OPEN, lambda *_: opened.set())
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())

    app = DomainDispatcherApplication(create_backend_app)  # one app, one in-memory AWS
    servers = []
    if args.open:
        opened.set()
    else:
        servers.append(_serve("127.0.0.1", args.private_port, app))
        print(f"moto: private endpoint on 127.0.0.1:{args.private_port}", flush=True)
    while not (opened.is_set() or stopping.is_set()):
        opened.wait(0.2)
    if not stopping.is_set():
        servers.append(_serve(args.host, args.port, app))
        print(f"moto: open on {args.host}:{args.port}", flush=True)
    while not stopping.is_set():
        stopping.wait(0.5)
    for server in servers:
        server.close()


if __name__ == "__main__":
    main()
