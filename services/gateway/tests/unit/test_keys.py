"""API keys: their shape, what is stored of them, and which tenant names are allowed."""

from __future__ import annotations

import hashlib

import pytest

from gateway.keys import (
    InvalidTenantName,
    check_tenant_name,
    issue_key,
    key_hash,
    key_prefix,
    looks_like_key,
)


def test_an_issued_key_is_rly_and_256_random_bits() -> None:
    key = issue_key()

    assert key.raw.startswith("rly_")
    assert len(key.raw) == 4 + 43
    assert looks_like_key(key.raw)
    assert issue_key().raw != key.raw


def test_only_a_hash_and_a_short_prefix_are_kept() -> None:
    key = issue_key()

    assert key.hash == hashlib.sha256(key.raw.encode()).hexdigest() == key_hash(key.raw)
    assert key.prefix == key_prefix(key.raw) == key.raw[:12]
    assert key.raw not in key.hash


@pytest.mark.parametrize("name", ["acme", "a", "0day", "acme-corp_2", "a" * 63])
def test_plain_lower_case_tenant_names_are_allowed(name: str) -> None:
    assert check_tenant_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "Acme", "-acme", "_acme", "acme corp", "acme\n", "acme.io", "a" * 64, "ácme"]
)
def test_other_tenant_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidTenantName):
        check_tenant_name(name)


@pytest.mark.parametrize(
    "candidate",
    ["", "rly_", "rly_short", "sk-" + "x" * 44, issue_key().raw + "x"],
    ids=["empty", "prefix-only", "short", "other-vendor", "one-char-too-long"],  # keys are random
)
def test_junk_does_not_look_like_a_key(candidate: str) -> None:
    assert not looks_like_key(candidate)
