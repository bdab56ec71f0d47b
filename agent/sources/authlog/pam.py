"""Messages written by PAM modules on behalf of any program (sshd, sudo, su, passwd ...).

`pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=1.2.3.4
user=root`, `pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)`,
`pam_unix(passwd:chauthtok): password changed for bob`, and sshd's own
`PAM 2 more authentication failures; ...`.
"""

from __future__ import annotations

import re

from canhgac.v1 import events_pb2

from .match import FAILURE, IGNORED, SUCCESS, AuthMatch, ProgramResult, with_source

_PAM = re.compile(r"(?P<module>pam_\w+)\((?P<service>[^:()]+):(?P<kind>\w+)\): (?P<text>.*)")
_KV = re.compile(r"(\w+)=(\S*)")
_SESSION = re.compile(
    r"session (?P<what>opened|closed) for user (?P<user>[^\s(]+)(?:\(uid=\d+\))?"
    r"(?: by (?P<by>[^\s(]*)(?:\(uid=\d+\))?)?"
)
_MORE = re.compile(r"PAM (?P<n>\d+) more authentication failures?; (?P<kv>.*)")
# Recognised PAM chatter that the program's own lines already cover.
_NOISE = (
    "check pass; user unknown",
    "conversation failed",
    "auth could not identify password",
)


def parse_pam(message: str) -> ProgramResult:
    """Parse a PAM message; None when it is not one (or not one we know)."""
    if m := _MORE.fullmatch(message):
        return _auth_failure(m["kv"], f"PAM {m['n']} more authentication failures", m["n"])
    m = _PAM.fullmatch(message)
    if m is None:
        return None
    text = m["text"]
    if text.startswith("authentication failure;"):
        return _auth_failure(text.partition(";")[2], "authentication failure", None)
    if m["kind"] == "session" and (s := _SESSION.fullmatch(text)):
        auth = events_pb2.AuthEvent(user=s["user"])
        if s["by"] and s["by"] != s["user"]:
            # su and sudo: `alice` opened a session as `root`; same shape as their own lines.
            auth.user, auth.target_user = s["by"], s["user"]
        labels = {"pam.service": m["service"]}
        opened = s["what"] == "opened"
        action = "session_opened" if opened else "session_closed"
        return AuthMatch("session", "start" if opened else "end", action, SUCCESS, auth, labels)
    if m["kind"] == "chauthtok" and text.startswith("password changed for "):
        auth = events_pb2.AuthEvent(user=text.removeprefix("password changed for "))
        return AuthMatch("iam", "change", "password_changed", SUCCESS, auth)
    if text.startswith(_NOISE):
        return IGNORED
    return None


def _auth_failure(kv_text: str, reason: str, count: str | None) -> AuthMatch:
    kv = dict(_KV.findall(kv_text))
    auth = events_pb2.AuthEvent(user=kv.get("user", ""), reason=reason)
    labels: dict[str, str] = {}
    with_source(auth, labels, kv.get("rhost", ""), None)
    if tty := kv.get("tty"):
        auth.tty = tty
    if logname := kv.get("logname") or kv.get("ruser"):
        # su and sudo: the account that asked to authenticate as `user`.
        labels["pam.ruser"] = logname
    if count is not None:
        labels["failure_count"] = count
    return AuthMatch("authentication", "start", "pam_authentication_failure", FAILURE, auth, labels)
