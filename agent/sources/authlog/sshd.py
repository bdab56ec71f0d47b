"""OpenSSH server messages (`sshd`, and `sshd-session` / `sshd-auth` since OpenSSH 9.8).

sshd writes user names verbatim, spaces and all ("Invalid user  admin from ..."), so every
pattern takes the user greedily and anchors on the last ` from <ip> port <n>` (or
` <ip> port <n>`): a name such as `x from 6.6.6.6 port 22` cannot forge the source address.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from canhgac.v1 import events_pb2

from .match import FAILURE, IGNORED, SUCCESS, UNKNOWN, AuthMatch, ProgramResult, with_source
from .pam import parse_pam

_PREAUTH = r"(?: \[preauth\])?"
_LOGIN = re.compile(
    r"(?P<verb>Accepted|Failed) (?P<method>\S+) for (?:(?P<invalid>invalid user) )?(?P<user>.*)"
    r" from (?P<ip>\S+) port (?P<port>\d+)(?: ssh2)?(?:: (?P<key>.*?))?" + _PREAUTH
)
_INVALID = re.compile(
    r"[Ii]nvalid user (?P<user>.*) from (?P<ip>\S+)(?: port (?P<port>\d+))?" + _PREAUTH
)
_CLOSED = re.compile(
    r"Connection (?P<how>closed|reset) by (?:(?P<kind>invalid|authenticating) user (?P<user>.*) )?"
    r"(?P<ip>\S+) port (?P<port>\d+)" + _PREAUTH
)
_DISCONNECTED = re.compile(
    r"Disconnected from (?:(?:(?P<kind>invalid|authenticating) )?user (?P<user>.*) )?"
    r"(?P<ip>\S+) port (?P<port>\d+)" + _PREAUTH
)
_DISCONNECTING = re.compile(
    r"Disconnecting (?:(?P<kind>invalid|authenticating) user (?P<user>.*) )?"
    r"(?P<ip>\S+) port (?P<port>\d+): (?P<reason>.*?)" + _PREAUTH
)
_MAX_TRIES = re.compile(
    r"error: maximum authentication attempts exceeded for (?:(?P<invalid>invalid user) )?"
    r"(?P<user>.*) from (?P<ip>\S+) port (?P<port>\d+)(?: ssh2)?" + _PREAUTH
)
_NOT_ALLOWED = re.compile(r"User (?P<user>.*) from (?P<ip>\S+) not allowed because (?P<why>.*)")
_NO_IDENT = re.compile(
    r"Did not receive identification string from (?P<ip>\S+)(?: port (?P<port>\d+))?"
)
# Recognised lines that add nothing the lines above do not already say.
_NOISE = (
    "Received disconnect from ",
    "Server listening on ",
    "Received signal ",
    "Postponed ",
    "Partial ",
    "Starting session: ",
    "Close session: ",
    "User child is on pid ",
    "Connection from ",
    "Timeout before authentication",
    "fatal: Timeout before authentication",
    "error: kex_exchange_identification: ",
    "kex_exchange_identification: ",
    "banner exchange: ",
    "Unable to negotiate with ",
)


def parse_sshd(message: str) -> ProgramResult:
    if message.startswith(("pam_", "PAM ")):
        return parse_pam(message)
    for pattern, build in _BUILDERS_BY_FIRST_CHARACTER.get(message[:1], ()):
        if m := pattern.fullmatch(message):
            return build(m)
    if message.startswith(_NOISE):
        return IGNORED
    return None


def _auth(
    m: re.Match[str], *, invalid: bool = False, reason: str = ""
) -> tuple[events_pb2.AuthEvent, dict[str, str]]:
    groups = m.groupdict()
    auth = events_pb2.AuthEvent(
        user=groups.get("user") or "",
        user_invalid=invalid or bool(groups.get("invalid")) or groups.get("kind") == "invalid",
        reason=reason,
    )
    labels: dict[str, str] = {}
    with_source(auth, labels, m["ip"], groups.get("port"))
    return auth, labels


def _login(m: re.Match[str]) -> AuthMatch:
    ok = m["verb"] == "Accepted"
    reason = "" if ok else ("invalid user" if m["invalid"] else f"failed {m['method']}")
    auth, labels = _auth(m, reason=reason)
    auth.method = m["method"]
    if m["key"]:
        labels["ssh.key"] = m["key"]
    return AuthMatch(
        "authentication", "start", "ssh_login", SUCCESS if ok else FAILURE, auth, labels
    )


def _invalid(m: re.Match[str]) -> AuthMatch:
    auth, labels = _auth(m, invalid=True, reason="invalid user")
    return AuthMatch("authentication", "info", "ssh_invalid_user", FAILURE, auth, labels)


def _closed(m: re.Match[str]) -> AuthMatch:
    # Closed before authentication completed: an abandoned (often scripted) attempt.
    outcome = FAILURE if m["kind"] else UNKNOWN
    auth, labels = _auth(m, reason=f"connection {m['how']}" + (" (preauth)" if m["kind"] else ""))
    return AuthMatch("authentication", "end", "ssh_connection_closed", outcome, auth, labels)


def _disconnected(m: re.Match[str]) -> AuthMatch:
    preauth = m["kind"] is not None
    auth, labels = _auth(m, reason="disconnected" + (" (preauth)" if preauth else ""))
    outcome = FAILURE if preauth else (SUCCESS if m["user"] is not None else UNKNOWN)
    return AuthMatch("authentication", "end", "ssh_disconnect", outcome, auth, labels)


def _disconnecting(m: re.Match[str]) -> AuthMatch:
    auth, labels = _auth(m, reason=m["reason"])
    return AuthMatch("authentication", "end", "ssh_disconnect", FAILURE, auth, labels)


def _max_tries(m: re.Match[str]) -> AuthMatch:
    auth, labels = _auth(m, reason="maximum authentication attempts exceeded")
    return AuthMatch("authentication", "info", "ssh_max_auth_attempts", FAILURE, auth, labels)


def _not_allowed(m: re.Match[str]) -> AuthMatch:
    # Not "ssh_login": sshd goes on to log each rejected password of this user as
    # "Failed password for invalid user", which is the attempt that counts.
    auth, labels = _auth(m, reason=f"not allowed because {m['why']}")
    return AuthMatch("authentication", "info", "ssh_user_not_allowed", FAILURE, auth, labels)


def _no_ident(m: re.Match[str]) -> AuthMatch:
    auth, labels = _auth(m, reason="no identification string")
    return AuthMatch("authentication", "info", "ssh_no_identification", FAILURE, auth, labels)


_Builder = Callable[[re.Match[str]], AuthMatch]
# Each pattern with the characters a message it matches can start with.
_BUILDERS: tuple[tuple[str, re.Pattern[str], _Builder], ...] = (
    ("AF", _LOGIN, _login),
    ("Ii", _INVALID, _invalid),
    ("C", _CLOSED, _closed),
    ("D", _DISCONNECTED, _disconnected),
    ("D", _DISCONNECTING, _disconnecting),
    ("e", _MAX_TRIES, _max_tries),
    ("U", _NOT_ALLOWED, _not_allowed),
    ("D", _NO_IDENT, _no_ident),
)
# A message is tried only against the patterns that can match its first character, in the
# order above: most lines then cost one match rather than up to eight.
_BUILDERS_BY_FIRST_CHARACTER: dict[str, tuple[tuple[re.Pattern[str], _Builder], ...]] = {
    first: tuple((pattern, build) for starts, pattern, build in _BUILDERS if first in starts)
    for first in {c for starts, _, _ in _BUILDERS for c in starts}
}
