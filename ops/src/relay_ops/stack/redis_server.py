"""Redis for the local stack: the one REDIS_URL names or, when nothing answers there and
redis-server is installed, a throwaway one under the state dir on a free port (keeps nothing)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis

from relay_ops.stack.config import redact
from relay_ops.stack.errors import StackError
from relay_ops.stack.moto import free_port
from relay_ops.stack.stores import Provisioned, wait_ready
from relay_ops.stack.supervisor import ProcessSpec, Supervisor

NAME = "redis"


async def provide_redis(url: str, *, state_dir: Path, supervisor: Supervisor) -> Provisioned:
    if await asyncio.to_thread(answers, url):
        return Provisioned(url, f"Redis at {redact(url)}")
    binary = shutil.which("redis-server")
    if binary is None:
        raise StackError(
            f"Redis does not answer at {redact(url)}, and there is no redis-server on PATH to "
            "start a throwaway one.\nStart Redis, install it (e.g. `apt-get install "
            "redis-server`), or point REDIS_URL at a server you can reach."
        )
    return await start_throwaway(binary, url, state_dir, supervisor)


def answers(url: str) -> bool:
    """True if Redis answers PING at ``url``; False if nothing listens; StackError otherwise."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        return bool(client.ping())
    except redis.AuthenticationError as exc:  # a ConnectionError subclass: check it first
        raise StackError(f"Redis at {redact(url)} refused the credentials: {exc}") from exc
    except (redis.ConnectionError, redis.TimeoutError):
        return False
    except redis.ResponseError as exc:
        raise StackError(f"Redis at {redact(url)} answered with an error: {exc}") from exc
    finally:
        client.close()


async def start_throwaway(
    binary: str, url: str, state_dir: Path, supervisor: Supervisor
) -> Provisioned:
    root = state_dir / NAME
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(root)]
    argv += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
    await supervisor.start(ProcessSpec(NAME, argv, cwd=root))
    local = on_port(url, port)
    await wait_ready(NAME, lambda: answers(local))
    return Provisioned(local, f"throwaway Redis on 127.0.0.1:{port}", throwaway=True)


def on_port(url: str, port: int) -> str:
    """``url`` (its database number kept, its credentials dropped) at 127.0.0.1:``port``."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="redis", netloc=f"127.0.0.1:{port}"))
