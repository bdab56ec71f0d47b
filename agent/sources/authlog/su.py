"""su, from util-linux (Debian, Ubuntu, recent Fedora) and from shadow-utils (older RHEL).

util-linux: `(to root) alice on pts/0`, `FAILED SU (to root) alice on pts/0`.
shadow-utils: `Successful su for root by alice`, `FAILED su for root by alice`,
`+ pts/0 alice:root`, `- pts/0 alice:root`.
"""

from __future__ import annotations

import re

from canhgac.v1 import events_pb2

from .match import FAILURE, IGNORED, SUCCESS, AuthMatch, ProgramResult
from .pam import parse_pam

_UTIL_LINUX = re.compile(
    r"(?P<failed>FAILED SU )?\(to (?P<target>\S+)\) (?P<user>\S+) on (?P<tty>\S+)"
)
_SHADOW = re.compile(r"(?P<verdict>Successful|FAILED) su for (?P<target>\S+) by (?P<user>\S+)")
_SHADOW_SHORT = re.compile(r"(?P<sign>[+-]) (?P<tty>\S+) (?P<user>[^\s:]+):(?P<target>\S+)")
_NOISE = ("pam_authenticate: ", "pam_acct_mgmt: ")


def parse_su(message: str) -> ProgramResult:
    if message.startswith("pam_") and not message.startswith(_NOISE):
        return parse_pam(message)
    if m := _UTIL_LINUX.fullmatch(message):
        return _su(m["user"], m["target"], m["tty"], ok=not m["failed"])
    if m := _SHADOW.fullmatch(message):
        return _su(m["user"], m["target"], "", ok=m["verdict"] == "Successful")
    if m := _SHADOW_SHORT.fullmatch(message):
        return _su(m["user"], m["target"], m["tty"], ok=m["sign"] == "+")
    if message.startswith(_NOISE):
        # util-linux repeats the PAM verdict that its FAILED SU line states with more detail.
        return IGNORED
    return None


def _su(user: str, target: str, tty: str, *, ok: bool) -> AuthMatch:
    auth = events_pb2.AuthEvent(
        user=user, target_user=target, tty=tty, reason="" if ok else "authentication failure"
    )
    return AuthMatch("authentication", "start", "su", SUCCESS if ok else FAILURE, auth)
