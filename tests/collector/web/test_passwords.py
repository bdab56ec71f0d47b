from __future__ import annotations

import pytest
from argon2 import extract_parameters
from argon2.low_level import Type

from collector.web.auth import passwords


def test_hash_is_argon2id_with_the_declared_parameters() -> None:
    digest = passwords.hash_password("correct horse battery")
    assert digest.startswith("$argon2id$")
    params = extract_parameters(digest)
    assert params.type is Type.ID
    assert params.memory_cost == passwords.MEMORY_COST_KIB >= 64 * 1024
    assert params.time_cost == passwords.TIME_COST
    assert params.parallelism == passwords.PARALLELISM
    assert "correct horse" not in digest
    assert not passwords.needs_rehash(digest)


def test_verify_accepts_the_password_and_refuses_others() -> None:
    digest = passwords.hash_password("correct horse battery")
    assert passwords.verify_password(digest, "correct horse battery")
    assert not passwords.verify_password(digest, "correct horse battery ")
    assert not passwords.verify_password(digest, "")


def test_same_password_hashes_differently() -> None:
    assert passwords.hash_password("correct horse battery") != passwords.hash_password(
        "correct horse battery"
    )


def test_damaged_or_missing_hash_never_verifies() -> None:
    assert not passwords.verify_password("", "canhgac-no-such-user")
    assert not passwords.verify_password("not a hash", "anything at all")


def test_short_password_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="at least") as info:
        passwords.hash_password("short-pw")
    assert "short-pw" not in str(info.value)
