"""The keys the local stack keeps between starts: the notifier's Fernet keys (no services)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, MultiFernet

from relay_ops.stack.errors import StackError
from relay_ops.stack.keys import webhooks_encryption_keys


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_first_start_makes_a_fernet_key_only_this_user_can_read(tmp_path: Path) -> None:
    path = tmp_path / "state" / "keys" / "webhooks-encryption-keys"
    keys = webhooks_encryption_keys(path)
    Fernet(keys)  # one valid key
    assert path.read_text() == keys + "\n"
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no partial file left


def test_a_later_start_of_the_same_state_reads_what_the_first_sealed(tmp_path: Path) -> None:
    path = tmp_path / "webhooks-encryption-keys"
    first = webhooks_encryption_keys(path)
    sealed = Fernet(first).encrypt(b"whsec_endpoint-secret")
    again = webhooks_encryption_keys(path)
    assert again == first
    assert MultiFernet([Fernet(k) for k in again.split(",")]).decrypt(sealed) == (
        b"whsec_endpoint-secret"
    )
    # another state dir is another stack: its own key
    assert webhooks_encryption_keys(tmp_path / "other" / "keys") != first


def test_keys_put_there_by_hand_are_kept_as_they_are(tmp_path: Path) -> None:
    """A rotation tried locally: the new key first, the old one after it."""
    path = tmp_path / "webhooks-encryption-keys"
    new, old = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    path.write_text(f"{new},{old}\n")
    assert webhooks_encryption_keys(path) == f"{new},{old}"


def test_an_empty_file_sealed_nothing_and_gets_a_key(tmp_path: Path) -> None:
    path = tmp_path / "webhooks-encryption-keys"
    path.write_text("\n")
    Fernet(webhooks_encryption_keys(path))
    assert path.read_text().strip()


def test_a_damaged_file_stops_the_start_and_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "webhooks-encryption-keys"
    good = Fernet.generate_key().decode()
    path.write_text(f"{good},not-a-key\n")
    with pytest.raises(StackError, match=r"key 2") as failure:
        webhooks_encryption_keys(path)
    assert str(path) in str(failure.value)
    assert good not in str(failure.value)  # a key never reaches a message
    assert path.read_text() == f"{good},not-a-key\n"
