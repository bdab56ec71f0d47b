"""Single-use enrollment tokens: how they look, how they are checked, how long they live.

A token is `cgt_<id>_<secret>`: the id (12 hex digits) is the lookup key and may be shown and
logged; the secret (256 random bits) is shown once, when the token is created, and only its
SHA-256 (with the id as a prefix) is stored. A high-entropy secret needs no slow hash: nobody
can guess it, and the hash only keeps a stolen database from yielding usable tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from collector.storage.enrollment import EnrollmentToken

PREFIX = "cgt"
_TOKEN_RE = re.compile(r"^cgt_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_DURATION_RE = re.compile(r"^(\d+)([smhd])$")
_UNIT_NS = {"s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9}
MAX_TTL_NS = 365 * _UNIT_NS["d"]
SYSTEM_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def secret_hash(token_id: str, secret: str) -> str:
    return hashlib.sha256(f"{token_id}:{secret}".encode()).hexdigest()


def new_token(
    now_ns: int, ttl_ns: int, *, system_id: str = "", agent_id: str = ""
) -> tuple[str, EnrollmentToken]:
    """A fresh token: (the text to hand to the operator once, the record to store)."""
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    record = EnrollmentToken(
        token_id=token_id,
        secret_hash=secret_hash(token_id, secret),
        created_ns=now_ns,
        expires_ns=now_ns + ttl_ns,
        system_id=system_id,
        agent_id=agent_id,
    )
    return f"{PREFIX}_{token_id}_{secret}", record


def parse_token(text: str) -> tuple[str, str] | None:
    """(token id, secret) of a well-formed token, else None. Never echoes the input."""
    match = _TOKEN_RE.match(text.strip())
    return (match.group(1), match.group(2)) if match else None


def secret_matches(record: EnrollmentToken, secret: str) -> bool:
    return hmac.compare_digest(record.secret_hash, secret_hash(record.token_id, secret))


def parse_duration(text: str) -> int:
    """`90s`, `30m`, `24h`, `7d` as nanoseconds; ValueError naming the accepted forms."""
    match = _DURATION_RE.match(text.strip())
    if match is None:
        raise ValueError(f"duration {text!r} must be a number and a unit: 90s, 30m, 24h, 7d")
    ns = int(match.group(1)) * _UNIT_NS[match.group(2)]
    if not 0 < ns <= MAX_TTL_NS:
        raise ValueError(f"duration {text!r} must be more than 0 and at most 365d")
    return ns
