"""Redis for the local stack: the one REDIS_URL names or, when nothing answers there and
redis-server is installed, a throwaway one under the state dir on a free port (keeps nothing).

With ``secure`` (RELAY_STACK_REDIS_SECURE=true) the stack always starts its own, as a
deployment runs Redis: AUTH with a random password and TLS only, with a certificate from a CA
made for it; the services get ``rediss://:<password>@127.0.0.1:<port>/<db>?ssl_ca_certs=<ca>``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from relay_ops.stack.config import redact
from relay_ops.stack.errors import StackError
from relay_ops.stack.moto import free_port
from relay_ops.stack.stores import Provisioned, wait_ready
from relay_ops.stack.supervisor import ProcessSpec, Supervisor

NAME = "redis"


async def provide_redis(
    url: str, *, state_dir: Path, supervisor: Supervisor, secure: bool = False
) -> Provisioned:
    if not secure and await asyncio.to_thread(answers, url):
        return Provisioned(url, f"Redis at {redact(url)}")
    binary = shutil.which("redis-server")
    if binary is None:
        raise StackError(
            f"Redis does not answer at {redact(url)}, and there is no redis-server on PATH to "
            "start a throwaway one.\nStart Redis, install it (e.g. `apt-get install "
            "redis-server`), or point REDIS_URL at a server you can reach."
        )
    return await start_throwaway(binary, url, state_dir, supervisor, secure=secure)


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
    binary: str, url: str, state_dir: Path, supervisor: Supervisor, *, secure: bool = False
) -> Provisioned:
    root = state_dir / NAME
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    port = free_port()
    settings = ["bind 127.0.0.1", f"dir {root}", 'save ""', "appendonly no", "daemonize no"]
    local = on_port(url, port)
    if secure:
        password = secrets.token_urlsafe(24)
        tls = make_tls_files(root / "tls")
        settings += [
            "port 0",
            f"tls-port {port}",
            f"tls-cert-file {tls.cert}",
            f"tls-key-file {tls.key}",
            f"tls-ca-cert-file {tls.ca}",
            "tls-auth-clients no",
            f"requirepass {password}",
        ]
        parts = urlsplit(local)
        local = urlunsplit(
            parts._replace(
                scheme="rediss",
                netloc=f":{quote(password, safe='')}@{parts.netloc}",
                query=urlencode({"ssl_ca_certs": str(tls.ca)}),
            )
        )
    else:
        settings.append(f"port {port}")
    # a file, not arguments: a password on the command line is visible to every local user
    conf = root / "redis.conf"
    conf.touch(mode=0o600)
    conf.write_text("\n".join(settings) + "\n")
    await supervisor.start(ProcessSpec(NAME, [binary, str(conf)], cwd=root))
    await wait_ready(NAME, lambda: answers(local))
    what = "AUTH and TLS" if secure else "no AUTH"
    return Provisioned(local, f"throwaway Redis on 127.0.0.1:{port} ({what})", throwaway=True)


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def make_tls_files(directory: Path) -> TlsFiles:
    """A CA of its own and a certificate for 127.0.0.1 it signed (a day long; made anew at
    every start, as the server is)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relay local Redis CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(directory / "ca.pem", directory / "redis.pem", directory / "redis.key")
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.touch(mode=0o600)
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


def on_port(url: str, port: int) -> str:
    """``url`` (its database number kept, its credentials dropped) at 127.0.0.1:``port``."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="redis", netloc=f"127.0.0.1:{port}"))
