"""Signed session cookies, their signing key, and login rate limiting.

The session cookie holds the user name, its expiry and the session's CSRF token, signed with
HMAC-SHA256 under a key generated at first start in the collector's state_dir (mode 0600). It
is only a claim: every request re-reads the user, so disabling a user or the end of an
assessor's term ends its sessions at once. The key is never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SESSION_COOKIE = "cg_session"
LOGIN_CSRF_COOKIE = "cg_login_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
KEY_FILE = "web-session.key"
SESSION_TTL_NS = 8 * 3600 * 10**9

Clock = Callable[[], int]


def load_or_create_key(state_dir: Path) -> bytes:
    """The session signing key in state_dir, created (0600, 256 random bits) when missing."""
    path = state_dir / KEY_FILE
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        fd = -1
    if fd >= 0:
        key = secrets.token_bytes(32)
        with os.fdopen(fd, "w") as out:
            out.write(key.hex() + "\n")
        return key
    key = bytes.fromhex(path.read_text().strip())
    if len(key) < 32:
        raise ValueError(f"{path}: the session key is too short; delete it to make a new one")
    return key


@dataclass(frozen=True)
class Session:
    username: str
    csrf: str
    expires_ns: int


def session_hash(session: Session) -> str:
    """What identifies a session server-side (logout): the SHA-256 of its random CSRF token,
    never the token itself."""
    return hashlib.sha256(session.csrf.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    """Turns a Session into a cookie value and back; a bad or expired value yields None."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __repr__(self) -> str:
        return "SessionSigner(<key hidden>)"

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())

    def new(self, username: str, now_ns: int, ttl_ns: int = SESSION_TTL_NS) -> Session:
        return Session(username, secrets.token_urlsafe(32), now_ns + ttl_ns)

    def dumps(self, session: Session) -> str:
        payload = {"u": session.username, "c": session.csrf, "e": session.expires_ns}
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{body}.{self._mac(body)}"

    def loads(self, value: str, now_ns: int) -> Session | None:
        body, _, mac = value.partition(".")
        if not mac or not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            data = json.loads(_unb64(body))
            session = Session(str(data["u"]), str(data["c"]), int(data["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        return session if now_ns < session.expires_ns else None


@dataclass
class LoginRateLimiter:
    """Counts failed logins per user name and per client address in a sliding window.

    A name or address that reached its limit is refused (even with the right password) until
    its oldest counted failure leaves the window; `retry_after_s` says how long that is.
    """

    clock: Clock
    per_username: int = 5
    per_address: int = 20
    window_ns: int = 15 * 60 * 10**9
    _failures: dict[str, list[int]] = field(default_factory=dict)

    def _recent(self, key: str, now: int) -> list[int]:
        times = [t for t in self._failures.get(key, []) if t > now - self.window_ns]
        if times:
            self._failures[key] = times
        else:
            self._failures.pop(key, None)
        return times

    def retry_after_s(self, username: str, address: str) -> int:
        """0 when a login may be tried now, else the seconds to wait."""
        now = self.clock()
        waits = []
        for key, limit in (
            ("u:" + username, self.per_username),
            ("a:" + address, self.per_address),
        ):
            times = self._recent(key, now)
            if len(times) >= limit:
                waits.append(times[-limit] + self.window_ns - now)
        return max((w + 10**9 - 1) // 10**9 for w in waits) if waits else 0

    def failed(self, username: str, address: str) -> None:
        now = self.clock()
        for key in ("u:" + username, "a:" + address):
            self._failures.setdefault(key, []).append(now)

    def succeeded(self, username: str) -> None:
        self._failures.pop("u:" + username, None)
