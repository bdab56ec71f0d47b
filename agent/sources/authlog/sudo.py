"""sudo's own log lines: `alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/ls`.

A denial or a password failure puts the reason before the keys (`alice : command not allowed ;
TTY=...`, `alice : 3 incorrect password attempts ; TTY=...`). COMMAND comes last and may itself
contain ` ; `, so it is split off before the rest is cut into fields.
"""

from __future__ import annotations

import re

from canhgac.v1 import events_pb2

from .match import FAILURE, SUCCESS, AuthMatch, ProgramResult
from .pam import parse_pam

_LINE = re.compile(r"(?P<user>[^\s:]+) : (?P<body>.*)")
_KEY = re.compile(r"(?P<key>[A-Z_]+)=(?P<value>.*)")
_COMMAND = re.compile(r"(?:^| ; )COMMAND=")
_FAILED_PASSWORDS = re.compile(r"(?P<n>\d+) incorrect password attempts?")


def parse_sudo(message: str) -> ProgramResult:
    if message.startswith("pam_"):
        return parse_pam(message)
    m = _LINE.fullmatch(message)
    if m is None:
        return None
    body, command = m["body"], ""
    if c := _COMMAND.search(body):
        body, command = body[: c.start()], body[c.end() :]
    fields: dict[str, str] = {}
    reasons: list[str] = []
    for part in body.split(" ; ") if body else []:
        if kv := _KEY.fullmatch(part):
            fields[kv["key"]] = kv["value"]
        else:
            reasons.append(part)
    if not command and "TTY" not in fields:
        return None
    reason = "; ".join(reasons)
    auth = events_pb2.AuthEvent(
        user=m["user"],
        target_user=fields.get("USER", ""),
        command=command,
        tty=fields.get("TTY", ""),
        cwd=fields.get("PWD", ""),
        reason=reason,
    )
    if "GROUP" in fields:
        auth.group = fields["GROUP"]
    labels: dict[str, str] = {}
    if n := _FAILED_PASSWORDS.fullmatch(reason):
        labels["failure_count"] = n["n"]
    outcome = FAILURE if reason else SUCCESS
    return AuthMatch("authentication", "start", "sudo_command", outcome, auth, labels)
