"""Password hashing with argon2id (memory-hard), through argon2-cffi.

The parameters are RFC 9106's second recommended option (64 MiB, 3 passes, 4 lanes); they are
written into every hash, so raising them later still verifies old hashes and `needs_rehash`
tells when one should be replaced. A password is never logged or put in an exception.
"""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

TIME_COST = 3
MEMORY_COST_KIB = 64 * 1024
PARALLELISM = 4
MIN_LENGTH = 12

_HASHER = PasswordHasher(
    time_cost=TIME_COST,
    memory_cost=MEMORY_COST_KIB,
    parallelism=PARALLELISM,
    hash_len=32,
    salt_len=16,
    type=Type.ID,
)
# Verified against when the user is unknown, so a missing user costs the same time as a
# wrong password and the response time does not tell which names exist.
_DUMMY_HASH = _HASHER.hash("canhgac-no-such-user")


def hash_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise ValueError(f"a password must have at least {MIN_LENGTH} characters")
    return _HASHER.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """True when `password` matches; False for a wrong password or a damaged hash."""
    try:
        return _HASHER.verify(stored_hash or _DUMMY_HASH, password) and bool(stored_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _HASHER.check_needs_rehash(stored_hash)
