"""Account management by shadow-utils: useradd, userdel, usermod, groupadd, groupdel,
groupmod, gpasswd, chage, passwd and chpasswd.

shadow-utils writes each change once per database (`/etc/group` and `/etc/gshadow`, group and
shadow group); only the /etc/passwd or /etc/group record becomes an event, the shadow twin is
recognised and ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from canhgac.v1 import events_pb2

from .match import FAILURE, IGNORED, SUCCESS, AuthMatch, ProgramResult
from .pam import parse_pam

_KV = re.compile(r"(\w+)=([^,]*)")
_Builder = Callable[[re.Match[str]], AuthMatch]


def _new_user(m: re.Match[str]) -> AuthMatch:
    kv = dict(_KV.findall(m["kv"]))
    auth = events_pb2.AuthEvent(user=kv.get("name", ""))
    if (uid := kv.get("UID", "")).isdigit():
        auth.uid = int(uid)
    if (gid := kv.get("GID", "")).isdigit():
        auth.gid = int(gid)
    labels = {f"user.{k}": kv[k] for k in ("home", "shell") if k in kv}
    if "from" in kv:
        auth.tty = kv["from"]
    return AuthMatch("iam", "creation", "user_created", SUCCESS, auth, labels)


def _new_group(m: re.Match[str]) -> AuthMatch:
    kv = dict(_KV.findall(m["kv"]))
    auth = events_pb2.AuthEvent(group=kv.get("name", ""))
    if (gid := kv.get("GID", "")).isdigit():
        auth.gid = int(gid)
    return AuthMatch("iam", "creation", "group_created", SUCCESS, auth)


def _member(action: str) -> _Builder:
    def build(m: re.Match[str]) -> AuthMatch:
        auth = events_pb2.AuthEvent(user=m["user"], group=m["group"])
        labels = {"changed_by": m["by"]} if "by" in m.re.groupindex else {}
        return AuthMatch("iam", "change", action, SUCCESS, auth, labels)

    return build


def _user(
    action: str, event_type: str, outcome: events_pb2.Outcome.ValueType = SUCCESS
) -> _Builder:
    def build(m: re.Match[str]) -> AuthMatch:
        groups = m.groupdict()
        auth = events_pb2.AuthEvent(user=m["user"], reason=groups.get("what") or "")
        labels = {"changed_by": groups["by"]} if groups.get("by") else {}
        return AuthMatch("iam", event_type, action, outcome, auth, labels)

    return build


def _group(action: str, event_type: str) -> _Builder:
    def build(m: re.Match[str]) -> AuthMatch:
        auth = events_pb2.AuthEvent(group=m["group"], reason=m.groupdict().get("what") or "")
        return AuthMatch("iam", event_type, action, SUCCESS, auth)

    return build


def _password_lock(m: re.Match[str]) -> AuthMatch:
    auth = events_pb2.AuthEvent(user=m["user"], reason=f"password {m['op']}ed")
    return AuthMatch("iam", "change", "user_changed", SUCCESS, auth)


def _renamed(m: re.Match[str]) -> AuthMatch:
    auth = events_pb2.AuthEvent(user=m["new"], reason=f"name changed from '{m['user']}'")
    return AuthMatch("iam", "change", "user_changed", SUCCESS, auth)


_PATTERNS: tuple[tuple[re.Pattern[str], _Builder | None], ...] = (
    (re.compile(r"new user: (?P<kv>.*)"), _new_user),
    (re.compile(r"new group: (?P<kv>.*)"), _new_group),
    (re.compile(r"group added to /etc/group: (?P<kv>.*)"), _new_group),
    (
        re.compile(r"add '(?P<user>[^']*)' to group '(?P<group>[^']*)'"),
        _member("user_added_to_group"),
    ),
    (
        re.compile(r"delete '(?P<user>[^']*)' from group '(?P<group>[^']*)'"),
        _member("user_removed_from_group"),
    ),
    (
        re.compile(r"user (?P<user>\S+) added by (?P<by>\S+) to group (?P<group>\S+)"),
        _member("user_added_to_group"),
    ),
    (
        re.compile(r"user (?P<user>\S+) removed by (?P<by>\S+) from group (?P<group>\S+)"),
        _member("user_removed_from_group"),
    ),
    (
        re.compile(r"failed adding user '(?P<user>[^']*)', (?P<what>.*)"),
        _user("user_created", "creation", FAILURE),
    ),
    (re.compile(r"delete user '(?P<user>[^']*)'"), _user("user_deleted", "deletion")),
    (re.compile(r"change user name '(?P<user>[^']*)' to '(?P<new>[^']*)'"), _renamed),
    (re.compile(r"change user '(?P<user>[^']*)' (?P<what>.*)"), _user("user_changed", "change")),
    (re.compile(r"(?P<op>lock|unlock) user '(?P<user>[^']*)' password"), _password_lock),
    (re.compile(r"changed password expiry for (?P<user>\S+)"), _user("user_changed", "change")),
    (
        re.compile(r"password for '(?P<user>[^']*)' changed by '(?P<by>[^']*)'"),
        _user("password_changed", "change"),
    ),
    (
        re.compile(r"removed group '(?P<group>[^']*)' owned by '[^']*'"),
        _group("group_deleted", "deletion"),
    ),
    (
        re.compile(r"group '(?P<group>[^']*)' removed(?: from /etc/group)?"),
        _group("group_deleted", "deletion"),
    ),
    (
        re.compile(r"group changed in /etc/group \(group (?P<group>[^/\s]+)/\d+, (?P<what>.*)\)"),
        _group("group_changed", "change"),
    ),
    # The shadow twins of the records above.
    (re.compile(r"group added to /etc/gshadow: .*"), None),
    (re.compile(r"add '[^']*' to shadow group '[^']*'"), None),
    (re.compile(r"delete '[^']*' from shadow group '[^']*'"), None),
    (re.compile(r"removed shadow group '[^']*' owned by '[^']*'"), None),
    (re.compile(r"group '[^']*' removed from /etc/gshadow"), None),
    (re.compile(r"group changed in /etc/(?:gshadow|passwd) .*"), None),
)


def parse_account(message: str) -> ProgramResult:
    if message.startswith("pam_"):
        return parse_pam(message)
    for pattern, build in _PATTERNS:
        if m := pattern.fullmatch(message):
            return IGNORED if build is None else build(m)
    return None
