"""API tokens: `cgk_<id>_<secret>`, shown once; only a hash of the secret is stored.

As with enrollment tokens (collector/enroll/tokens.py) the id (12 hex digits) is the lookup
key and may be logged; the secret has 256 random bits, so a SHA-256 keyed by the id suffices.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from collector.web.auth.users import ApiToken, Role

PREFIX = "cgk"
_TOKEN_RE = re.compile(r"^cgk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


def secret_hash(token_id: str, secret: str) -> str:
    return hashlib.sha256(f"{PREFIX}:{token_id}:{secret}".encode()).hexdigest()


def new_api_token(
    role: Role, now_ns: int, ttl_ns: int, *, systems: tuple[str, ...] = (), label: str = ""
) -> tuple[str, ApiToken]:
    """(the text to show once, the record to store)."""
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    record = ApiToken(
        token_id=token_id,
        secret_hash=secret_hash(token_id, secret),
        role=role,
        created_ns=now_ns,
        expires_ns=now_ns + ttl_ns,
        systems=systems,
        label=label,
    )
    return f"{PREFIX}_{token_id}_{secret}", record


def parse_api_token(text: str) -> tuple[str, str] | None:
    """(token id, secret) of a well-formed token, else None. Never echoes the input."""
    match = _TOKEN_RE.match(text.strip())
    return (match.group(1), match.group(2)) if match else None


def secret_matches(record: ApiToken, secret: str) -> bool:
    return hmac.compare_digest(record.secret_hash, secret_hash(record.token_id, secret))
