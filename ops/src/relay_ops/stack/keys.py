"""Keys the local stack keeps between starts: the notifier's Fernet keys
(RELAY_WEBHOOKS_ENCRYPTION_KEYS), which encrypt webhook endpoint secrets at rest.

The internal-auth key pair is made anew at every start (a token lives for seconds), but an
endpoint secret lives as long as the database that holds it, and PostgreSQL may outlive the
stack (DATABASE_URL names a server of the user's). So the keys are made once, at the first
start, and kept in the state dir, readable by this user only; every later start of the same
state dir hands the notifier the same keys. Nothing here prints a key.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet

from relay_ops.stack.errors import StackError


def webhooks_encryption_keys(path: Path) -> str:
    """The keys kept at ``path`` (comma-separated, newest first), made there first if the file
    is missing or empty (an empty one encrypted nothing)."""
    try:
        keys = path.read_text().strip()
    except FileNotFoundError:
        keys = ""
    if not keys:
        keys = Fernet.generate_key().decode()
        _write_private(path, keys + "\n")
    _check(keys, path)
    return keys


def _check(keys: str, path: Path) -> None:
    # read as the notifier reads it: empty parts are skipped
    for position, key in enumerate((k.strip() for k in keys.split(",") if k.strip()), start=1):
        try:
            Fernet(key)
        except ValueError:
            raise StackError(
                f"{path}: key {position} is not a Fernet key (the file holds Fernet keys, "
                "comma-separated, newest first).\nFix it, or delete the file to make a new key: "
                "webhook endpoints stored under the old keys can then no longer sign deliveries."
            ) from None


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` at ``path`` (0600, in a 0700 directory) in one step: a reader sees the
    whole file or none."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(partial, path)
