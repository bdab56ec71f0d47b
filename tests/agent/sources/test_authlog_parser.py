"""The auth-log parser against real-world line shapes, and what it does with the rest."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

import pytest

from agent.sources.authlog import accounts, sshd, su, sudo
from agent.sources.authlog.parser import PROGRAM_PARSERS, AuthLogParser
from agent.sources.base import Skipped
from canhgac.v1 import events_pb2

S, F, U = events_pb2.OUTCOME_SUCCESS, events_pb2.OUTCOME_FAILURE, events_pb2.OUTCOME_UNKNOWN
NOW = datetime(2026, 11, 22, 12, 30, tzinfo=UTC)
H = "Nov 22 12:27:47 web1"


def clock_at(dt: datetime) -> Any:
    return lambda: int(dt.timestamp()) * 1_000_000_000


def make_parser(now: datetime = NOW, tz: tzinfo | None = UTC) -> AuthLogParser:
    return AuthLogParser(agent_id="agent-1", default_host="fallback", clock_ns=clock_at(now), tz=tz)


def parse_event(line: str, **kw: Any) -> events_pb2.Event:
    result = make_parser(**kw).parse(line)
    assert isinstance(result, events_pb2.Event), result
    return result


@dataclass(frozen=True)
class Shape:
    line: str
    category: str
    type: str
    action: str
    outcome: int
    auth: dict[str, Any]
    labels: dict[str, str] = field(default_factory=dict)


def sh(line: str, cat: str, typ: str, action: str, outcome: int, **auth: Any) -> Shape:
    labels = auth.pop("labels", {})
    return Shape(f"{H} {line}", cat, typ, action, outcome, auth, labels)


def login(line: str, outcome: int, **auth: Any) -> Shape:
    return sh(line, "authentication", "start", "ssh_login", outcome, **auth)


A, IAM = "authentication", "iam"
SSHD = {"process_name": "sshd"}

SHAPES = [
    # --- sshd: logins -------------------------------------------------------------------
    login(
        "sshd[1201]: Accepted password for alice from 203.0.113.5 port 50122 ssh2",
        S, user="alice", source_ip="203.0.113.5", source_port=50122, method="password",
        process_name="sshd", process_pid=1201,
    ),
    login(
        "sshd[1202]: Accepted publickey for deploy from 198.51.100.7 port 40022 ssh2: "
        "RSA SHA256:Qx1y2z3abcdEFGH",
        S, user="deploy", source_ip="198.51.100.7", source_port=40022, method="publickey",
        process_name="sshd", process_pid=1202, labels={"ssh.key": "RSA SHA256:Qx1y2z3abcdEFGH"},
    ),
    login(
        "sshd[1203]: Accepted keyboard-interactive/pam for bob from 203.0.113.9 port 51000 ssh2",
        S, user="bob", source_ip="203.0.113.9", source_port=51000,
        method="keyboard-interactive/pam", process_name="sshd", process_pid=1203,
    ),
    login(
        "sshd-session[1232]: Accepted publickey for alice from 203.0.113.5 port 50130 ssh2: "
        "ED25519 SHA256:zz",
        S, user="alice", source_ip="203.0.113.5", source_port=50130, method="publickey",
        process_name="sshd-session", process_pid=1232, labels={"ssh.key": "ED25519 SHA256:zz"},
    ),
    login(
        "sshd[1204]: Failed password for root from 45.33.32.156 port 39212 ssh2",
        F, user="root", source_ip="45.33.32.156", source_port=39212, method="password",
        reason="failed password", process_name="sshd", process_pid=1204,
    ),
    login(
        "sshd[1205]: Failed password for invalid user admin from 45.33.32.156 port 39214 ssh2",
        F, user="admin", user_invalid=True, source_ip="45.33.32.156", source_port=39214,
        method="password", reason="invalid user", process_name="sshd", process_pid=1205,
    ),
    login(
        "sshd[1206]: Failed none for invalid user oracle from 45.33.32.156 port 40000 ssh2",
        F, user="oracle", user_invalid=True, source_ip="45.33.32.156", source_port=40000,
        method="none", reason="invalid user", process_name="sshd", process_pid=1206,
    ),
    login(
        "sshd[1207]: Failed publickey for git from 192.0.2.44 port 60222 ssh2: ED25519 SHA256:AbC",
        F, user="git", source_ip="192.0.2.44", source_port=60222, method="publickey",
        reason="failed publickey", process_name="sshd", process_pid=1207,
        labels={"ssh.key": "ED25519 SHA256:AbC"},
    ),
    login(
        "sshd[1208]: Failed password for root from 2001:db8::dead:beef port 22022 ssh2",
        F, user="root", source_ip="2001:db8::dead:beef", source_port=22022, method="password",
        reason="failed password", process_name="sshd", process_pid=1208,
    ),
    login(
        "sshd[1209]: Failed password for invalid user a b from 1.2.3.4 port 22 ssh2",
        F, user="a b", user_invalid=True, source_ip="1.2.3.4", source_port=22,
        method="password", reason="invalid user", process_name="sshd", process_pid=1209,
    ),
    # A user name crafted to look like an address: the last " from IP port N" wins.
    login(
        "sshd[1210]: Failed password for invalid user x from 6.6.6.6 port 22 "
        "from 1.2.3.4 port 5555 ssh2",
        F, user="x from 6.6.6.6 port 22", user_invalid=True, source_ip="1.2.3.4",
        source_port=5555, method="password", reason="invalid user", process_name="sshd",
        process_pid=1210,
    ),
    login(
        "sshd[1233]: Failed password for root from gw.example.net port 22 ssh2",
        F, user="root", source_port=22, method="password", reason="failed password",
        process_name="sshd", process_pid=1233, labels={"source.domain": "gw.example.net"},
    ),
    # --- sshd: invalid users, closing, limits -------------------------------------------
    sh(
        "sshd[1211]: Invalid user test from 103.99.0.122 port 53384",
        A, "info", "ssh_invalid_user", F, user="test", user_invalid=True,
        source_ip="103.99.0.122", source_port=53384, reason="invalid user", **SSHD,
        process_pid=1211,
    ),
    sh(
        "sshd[1212]: Invalid user  admin from 103.99.0.122 port 53386",
        A, "info", "ssh_invalid_user", F, user=" admin", user_invalid=True,
        source_ip="103.99.0.122", source_port=53386, reason="invalid user", **SSHD,
        process_pid=1212,
    ),
    sh(
        "sshd[1213]: Invalid user  from 103.99.0.122 port 53388",
        A, "info", "ssh_invalid_user", F, user_invalid=True, source_ip="103.99.0.122",
        source_port=53388, reason="invalid user", **SSHD, process_pid=1213,
    ),
    sh(
        "sshd[1214]: Connection closed by invalid user ubnt 141.98.10.60 port 41232 [preauth]",
        A, "end", "ssh_connection_closed", F, user="ubnt", user_invalid=True,
        source_ip="141.98.10.60", source_port=41232, reason="connection closed (preauth)",
        **SSHD, process_pid=1214,
    ),
    sh(
        "sshd[1215]: Connection closed by authenticating user root 141.98.10.60 port 41300 "
        "[preauth]",
        A, "end", "ssh_connection_closed", F, user="root", source_ip="141.98.10.60",
        source_port=41300, reason="connection closed (preauth)", **SSHD, process_pid=1215,
    ),
    sh(
        "sshd[1216]: Connection closed by 141.98.10.60 port 41400 [preauth]",
        A, "end", "ssh_connection_closed", U, source_ip="141.98.10.60", source_port=41400,
        reason="connection closed", **SSHD, process_pid=1216,
    ),
    sh(
        "sshd[1217]: Connection reset by authenticating user a b 141.98.10.61 port 41500 "
        "[preauth]",
        A, "end", "ssh_connection_closed", F, user="a b", source_ip="141.98.10.61",
        source_port=41500, reason="connection reset (preauth)", **SSHD, process_pid=1217,
    ),
    sh(
        "sshd[1218]: Disconnected from user alice 203.0.113.5 port 50122",
        A, "end", "ssh_disconnect", S, user="alice", source_ip="203.0.113.5",
        source_port=50122, reason="disconnected", **SSHD, process_pid=1218,
    ),
    sh(
        "sshd[1219]: Disconnected from invalid user admin 45.33.32.156 port 39214 [preauth]",
        A, "end", "ssh_disconnect", F, user="admin", user_invalid=True,
        source_ip="45.33.32.156", source_port=39214, reason="disconnected (preauth)", **SSHD,
        process_pid=1219,
    ),
    sh(
        "sshd[1220]: Disconnected from authenticating user root 2001:db8::7 port 39300 [preauth]",
        A, "end", "ssh_disconnect", F, user="root", source_ip="2001:db8::7", source_port=39300,
        reason="disconnected (preauth)", **SSHD, process_pid=1220,
    ),
    sh(
        "sshd[1221]: Disconnected from 45.33.32.156 port 39400 [preauth]",
        A, "end", "ssh_disconnect", U, source_ip="45.33.32.156", source_port=39400,
        reason="disconnected", **SSHD, process_pid=1221,
    ),
    sh(
        "sshd[1222]: error: maximum authentication attempts exceeded for root from "
        "218.92.0.107 port 28931 ssh2 [preauth]",
        A, "info", "ssh_max_auth_attempts", F, user="root", source_ip="218.92.0.107",
        source_port=28931, reason="maximum authentication attempts exceeded", **SSHD,
        process_pid=1222,
    ),
    sh(
        "sshd[1223]: error: maximum authentication attempts exceeded for invalid user admin "
        "from 218.92.0.107 port 28932 ssh2 [preauth]",
        A, "info", "ssh_max_auth_attempts", F, user="admin", user_invalid=True,
        source_ip="218.92.0.107", source_port=28932,
        reason="maximum authentication attempts exceeded", **SSHD, process_pid=1223,
    ),
    sh(
        "sshd[1224]: Disconnecting authenticating user root 218.92.0.107 port 28931: "
        "Too many authentication failures [preauth]",
        A, "end", "ssh_disconnect", F, user="root", source_ip="218.92.0.107",
        source_port=28931, reason="Too many authentication failures", **SSHD,
        process_pid=1224,
    ),
    sh(
        "sshd[1230]: User root from 192.0.2.10 not allowed because not listed in AllowUsers",
        A, "info", "ssh_user_not_allowed", F, user="root", source_ip="192.0.2.10",
        reason="not allowed because not listed in AllowUsers", **SSHD, process_pid=1230,
    ),
    sh(
        "sshd[1231]: Did not receive identification string from 192.0.2.99 port 40404",
        A, "info", "ssh_no_identification", F, source_ip="192.0.2.99", source_port=40404,
        reason="no identification string", **SSHD, process_pid=1231,
    ),
    # --- sshd: PAM --------------------------------------------------------------------------
    sh(
        "sshd[1225]: PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= "
        "rhost=218.92.0.107  user=root",
        A, "start", "pam_authentication_failure", F, user="root", source_ip="218.92.0.107",
        tty="ssh", reason="PAM 2 more authentication failures", **SSHD, process_pid=1225,
        labels={"failure_count": "2"},
    ),
    sh(
        "sshd[1226]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 "
        "tty=ssh ruser= rhost=218.92.0.107  user=root",
        A, "start", "pam_authentication_failure", F, user="root", source_ip="218.92.0.107",
        tty="ssh", reason="authentication failure", **SSHD, process_pid=1226,
    ),
    sh(
        "sshd[1227]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 "
        "tty=ssh ruser= rhost=2001:db8::9",
        A, "start", "pam_authentication_failure", F, source_ip="2001:db8::9", tty="ssh",
        reason="authentication failure", **SSHD, process_pid=1227,
    ),
    sh(
        "sshd[1228]: pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)",
        "session", "start", "session_opened", S, user="alice", **SSHD, process_pid=1228,
        labels={"pam.service": "sshd"},
    ),
    sh(
        "sshd[1229]: pam_unix(sshd:session): session closed for user alice",
        "session", "end", "session_closed", S, user="alice", **SSHD, process_pid=1229,
        labels={"pam.service": "sshd"},
    ),
    # --- sudo -------------------------------------------------------------------------------
    sh(
        "sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/apt update",
        A, "start", "sudo_command", S, user="alice", target_user="root",
        command="/usr/bin/apt update", tty="pts/0", cwd="/home/alice", process_name="sudo",
    ),
    sh(
        "sudo[4321]:    alice : TTY=pts/1 ; PWD=/srv ; USER=postgres ; ENV=PGDATA=/srv/pg ; "
        "COMMAND=/usr/bin/psql -c select 1 ; select 2",
        A, "start", "sudo_command", S, user="alice", target_user="postgres",
        command="/usr/bin/psql -c select 1 ; select 2", tty="pts/1", cwd="/srv",
        process_name="sudo", process_pid=4321,
    ),
    sh(
        "sudo:    alice : TTY=unknown ; PWD=/ ; USER=root ; GROUP=adm ; COMMAND=/usr/bin/true",
        A, "start", "sudo_command", S, user="alice", target_user="root", group="adm",
        command="/usr/bin/true", tty="unknown", cwd="/", process_name="sudo",
    ),
    sh(
        "sudo:      bob : command not allowed ; TTY=pts/2 ; PWD=/home/bob ; USER=root ; "
        "COMMAND=/bin/cat /etc/shadow",
        A, "start", "sudo_command", F, user="bob", target_user="root",
        command="/bin/cat /etc/shadow", tty="pts/2", cwd="/home/bob",
        reason="command not allowed", process_name="sudo",
    ),
    sh(
        "sudo:  mallory : user NOT in sudoers ; TTY=pts/3 ; PWD=/home/mallory ; USER=root ; "
        "COMMAND=/bin/bash",
        A, "start", "sudo_command", F, user="mallory", target_user="root", command="/bin/bash",
        tty="pts/3", cwd="/home/mallory", reason="user NOT in sudoers", process_name="sudo",
    ),
    sh(
        "sudo:    alice : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/home/alice ; "
        "USER=root ; COMMAND=/bin/ls",
        A, "start", "sudo_command", F, user="alice", target_user="root", command="/bin/ls",
        tty="pts/0", cwd="/home/alice", reason="3 incorrect password attempts",
        process_name="sudo", labels={"failure_count": "3"},
    ),
    sh(
        "sudo:    alice : 1 incorrect password attempt ; TTY=pts/0 ; PWD=/home/alice ; "
        "USER=root ; COMMAND=/bin/ls",
        A, "start", "sudo_command", F, user="alice", target_user="root", command="/bin/ls",
        tty="pts/0", cwd="/home/alice", reason="1 incorrect password attempt",
        process_name="sudo", labels={"failure_count": "1"},
    ),
    sh(
        "sudo: pam_unix(sudo:auth): authentication failure; logname=alice uid=1000 euid=0 "
        "tty=/dev/pts/0 ruser=alice rhost=  user=alice",
        A, "start", "pam_authentication_failure", F, user="alice", tty="/dev/pts/0",
        reason="authentication failure", process_name="sudo", labels={"pam.ruser": "alice"},
    ),
    sh(
        "sudo: pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)",
        "session", "start", "session_opened", S, user="alice", target_user="root",
        process_name="sudo", labels={"pam.service": "sudo"},
    ),
    sh(
        "sudo: pam_unix(sudo:session): session closed for user root",
        "session", "end", "session_closed", S, user="root", process_name="sudo",
        labels={"pam.service": "sudo"},
    ),
    # --- su ---------------------------------------------------------------------------------
    sh(
        "su[5001]: (to root) alice on pts/0",
        A, "start", "su", S, user="alice", target_user="root", tty="pts/0", process_name="su",
        process_pid=5001,
    ),
    sh(
        "su[5002]: FAILED SU (to root) mallory on pts/3",
        A, "start", "su", F, user="mallory", target_user="root", tty="pts/3",
        reason="authentication failure", process_name="su", process_pid=5002,
    ),
    sh(
        "su: Successful su for root by alice",
        A, "start", "su", S, user="alice", target_user="root", process_name="su",
    ),
    sh(
        "su: FAILED su for root by mallory",
        A, "start", "su", F, user="mallory", target_user="root",
        reason="authentication failure", process_name="su",
    ),
    sh(
        "su: + pts/0 alice:root",
        A, "start", "su", S, user="alice", target_user="root", tty="pts/0", process_name="su",
    ),
    sh(
        "su: - pts/3 mallory:root",
        A, "start", "su", F, user="mallory", target_user="root", tty="pts/3",
        reason="authentication failure", process_name="su",
    ),
    sh(
        "su[5003]: pam_unix(su:auth): authentication failure; logname=mallory uid=1001 euid=0 "
        "tty=/dev/pts/3 ruser=mallory rhost=  user=root",
        A, "start", "pam_authentication_failure", F, user="root", tty="/dev/pts/3",
        reason="authentication failure", process_name="su", process_pid=5003,
        labels={"pam.ruser": "mallory"},
    ),
    sh(
        "su[5004]: pam_unix(su-l:session): session opened for user root(uid=0) by alice(uid=1000)",
        "session", "start", "session_opened", S, user="alice", target_user="root",
        process_name="su", process_pid=5004, labels={"pam.service": "su-l"},
    ),
    sh(
        "su[5005]: pam_unix(su:session): session opened for user postgres by (uid=0)",
        "session", "start", "session_opened", S, user="postgres", process_name="su",
        process_pid=5005, labels={"pam.service": "su"},
    ),
    # --- account management -----------------------------------------------------------------
    sh(
        "useradd[6001]: new user: name=bob, UID=1001, GID=1001, home=/home/bob, "
        "shell=/bin/bash, from=/dev/pts/0",
        IAM, "creation", "user_created", S, user="bob", uid=1001, gid=1001, tty="/dev/pts/0",
        process_name="useradd", process_pid=6001,
        labels={"user.home": "/home/bob", "user.shell": "/bin/bash"},
    ),
    sh(
        "useradd[6001]: new group: name=bob, GID=1001",
        IAM, "creation", "group_created", S, group="bob", gid=1001, process_name="useradd",
        process_pid=6001,
    ),
    sh(
        "useradd[6002]: add 'bob' to group 'sudo'",
        IAM, "change", "user_added_to_group", S, user="bob", group="sudo",
        process_name="useradd", process_pid=6002,
    ),
    sh(
        "useradd[6013]: failed adding user 'eve', data deleted",
        IAM, "creation", "user_created", F, user="eve", reason="data deleted",
        process_name="useradd", process_pid=6013,
    ),
    sh(
        "groupadd[6003]: group added to /etc/group: name=devs, GID=1002",
        IAM, "creation", "group_created", S, group="devs", gid=1002, process_name="groupadd",
        process_pid=6003,
    ),
    sh(
        "groupadd[6003]: new group: name=devs, GID=1002",
        IAM, "creation", "group_created", S, group="devs", gid=1002, process_name="groupadd",
        process_pid=6003,
    ),
    sh(
        "usermod[6004]: add 'bob' to group 'docker'",
        IAM, "change", "user_added_to_group", S, user="bob", group="docker",
        process_name="usermod", process_pid=6004,
    ),
    sh(
        "usermod[6004]: delete 'bob' from group 'docker'",
        IAM, "change", "user_removed_from_group", S, user="bob", group="docker",
        process_name="usermod", process_pid=6004,
    ),
    sh(
        "usermod[6005]: change user 'bob' shell from '/bin/sh' to '/bin/bash'",
        IAM, "change", "user_changed", S, user="bob", reason="shell from '/bin/sh' to '/bin/bash'",
        process_name="usermod", process_pid=6005,
    ),
    sh(
        "usermod[6006]: change user name 'bob' to 'robert'",
        IAM, "change", "user_changed", S, user="robert", reason="name changed from 'bob'",
        process_name="usermod", process_pid=6006,
    ),
    sh(
        "usermod[6007]: lock user 'robert' password",
        IAM, "change", "user_changed", S, user="robert", reason="password locked",
        process_name="usermod", process_pid=6007,
    ),
    sh(
        "userdel[6008]: delete user 'robert'",
        IAM, "deletion", "user_deleted", S, user="robert", process_name="userdel",
        process_pid=6008,
    ),
    sh(
        "userdel[6008]: removed group 'robert' owned by 'robert'",
        IAM, "deletion", "group_deleted", S, group="robert", process_name="userdel",
        process_pid=6008,
    ),
    sh(
        "groupdel[6009]: group 'devs' removed",
        IAM, "deletion", "group_deleted", S, group="devs", process_name="groupdel",
        process_pid=6009,
    ),
    sh(
        "groupmod[6015]: group changed in /etc/group (group devs/1002, new name: developers)",
        IAM, "change", "group_changed", S, group="devs", reason="new name: developers",
        process_name="groupmod", process_pid=6015,
    ),
    sh(
        "gpasswd[6012]: user carol added by root to group wheel",
        IAM, "change", "user_added_to_group", S, user="carol", group="wheel",
        process_name="gpasswd", process_pid=6012, labels={"changed_by": "root"},
    ),
    sh(
        "passwd[6010]: pam_unix(passwd:chauthtok): password changed for alice",
        IAM, "change", "password_changed", S, user="alice", process_name="passwd",
        process_pid=6010,
    ),
    sh(
        "passwd[6014]: password for 'bob' changed by 'root'",
        IAM, "change", "password_changed", S, user="bob", process_name="passwd",
        process_pid=6014, labels={"changed_by": "root"},
    ),
    sh(
        "chpasswd[6011]: pam_unix(chpasswd:chauthtok): password changed for svc",
        IAM, "change", "password_changed", S, user="svc", process_name="chpasswd",
        process_pid=6011,
    ),
    sh(
        "chage[6016]: changed password expiry for bob",
        IAM, "change", "user_changed", S, user="bob", process_name="chage", process_pid=6016,
    ),
]  # fmt: skip


def test_the_table_covers_at_least_sixty_distinct_shapes() -> None:
    assert len({shape.line for shape in SHAPES}) >= 60


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.line[len(H) + 1 :][:60])
def test_line_shape(shape: Shape) -> None:
    event = parse_event(shape.line)
    assert (event.category, event.type, event.action, event.outcome) == (
        shape.category,
        shape.type,
        shape.action,
        shape.outcome,
    )
    assert event.auth == events_pb2.AuthEvent(**shape.auth)
    assert dict(event.labels) == shape.labels
    assert event.original == shape.line
    assert event.host == "web1"
    assert event.source == "authlog"


def test_event_header() -> None:
    line = f"{H} sshd[1]: Failed password for root from 1.2.3.4 port 22 ssh2"
    created = datetime(2026, 11, 22, 12, 31, tzinfo=UTC)
    event = parse_event(line, now=created)
    assert len(event.id) == 26
    assert event.agent_id == "agent-1"
    assert event.time_ns == int(datetime(2026, 11, 22, 12, 27, 47, tzinfo=UTC).timestamp()) * 10**9
    assert event.created_ns == int(created.timestamp()) * 10**9
    assert event.WhichOneof("payload") == "auth"
    other = parse_event(line, now=created)
    assert other.id != event.id


def test_message_repeated_sets_repeat_count_and_keeps_the_raw_line() -> None:
    line = (
        f"{H} sshd[1234]: message repeated 5 times: "
        "[ Failed password for root from 45.33.32.156 port 39212 ssh2]"
    )
    event = parse_event(line)
    assert event.action == "ssh_login"
    assert event.auth.repeat_count == 5
    assert event.auth.source_ip == "45.33.32.156"
    assert event.original == line


def test_message_repeated_with_a_bracket_inside() -> None:
    line = (
        f"{H} sshd[1234]: message repeated 2 times: "
        "[ Disconnected from invalid user admin 45.33.32.156 port 39214 [preauth]]"
    )
    event = parse_event(line)
    assert (event.action, event.auth.user, event.auth.repeat_count) == (
        "ssh_disconnect",
        "admin",
        2,
    )


# --- RFC 5424 lines ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "host", "pid"),
    [
        (
            "<86>1 2026-11-22T19:27:47.123456+07:00 web1 sshd 4242 - - "
            "Failed password for root from 203.0.113.7 port 5123 ssh2",
            "web1",
            4242,
        ),
        (  # no PRI, structured data with an escaped bracket inside a value
            '1 2026-11-22T12:27:47.123456Z web1 sshd 4242 auth [meta sequenceId="7" x="a\\]b"]'
            '[origin ip="10.0.0.1"] Failed password for root from 203.0.113.7 port 5123 ssh2',
            "web1",
            4242,
        ),
        (  # nil host and a BOM before the message
            "<38>1 2026-11-22T12:27:47.123456Z - sshd - - - \ufeff"
            "Failed password for root from 203.0.113.7 port 5123 ssh2",
            "fallback",
            0,
        ),
    ],
)
def test_rfc5424_lines(line: str, host: str, pid: int) -> None:
    event = parse_event(line)
    assert event.action == "ssh_login"
    assert event.auth.source_ip == "203.0.113.7"
    assert event.auth.source_port == 5123
    assert event.host == host
    assert event.auth.process_pid == pid
    assert event.time_ns == 1_795_350_467_123_456_000  # 2026-11-22T12:27:47.123456Z


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('<86>1 2026-11-22T19:27:47Z web1 sshd 1 - [unterminated x="1" msg', "bad_structured_data"),
        ("<86>1 22/11/2026 web1 sshd 1 - - Failed password for root", "bad_timestamp"),
        ("<86>1 2026-11-22T19:27:47Z web1 - 1 - - hello", "not_syslog"),
    ],
)
def test_rfc5424_lines_that_are_counted_not_parsed(line: str, reason: str) -> None:
    assert make_parser().parse(line) == Skipped(reason)


# --- timestamps -------------------------------------------------------------------------------


def ts(dt: datetime) -> int:
    return int(dt.timestamp()) * 10**9


@pytest.mark.parametrize(
    ("stamp", "now", "expected"),
    [
        ("Nov 22 12:27:47", NOW, datetime(2026, 11, 22, 12, 27, 47, tzinfo=UTC)),
        ("Nov  2 01:02:03", NOW, datetime(2026, 11, 2, 1, 2, 3, tzinfo=UTC)),
        # A December line read in January belongs to last year.
        ("Dec 31 23:59:59", datetime(2027, 1, 1, 0, 0, 5, tzinfo=UTC),
         datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)),
        # A little ahead of the agent's clock (skew) is still this year.
        ("Nov 22 20:00:00", NOW, datetime(2026, 11, 22, 20, 0, 0, tzinfo=UTC)),
        # Too far ahead to be this year: last year's log.
        ("Dec 25 10:00:00", NOW, datetime(2025, 12, 25, 10, 0, 0, tzinfo=UTC)),
        # 29 February only exists in a leap year.
        ("Feb 29 08:00:00", NOW, datetime(2024, 2, 29, 8, 0, 0, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_rfc3164_year_inference(stamp: str, now: datetime, expected: datetime) -> None:
    line = f"{stamp} web1 su: + pts/0 alice:root"
    assert parse_event(line, now=now).time_ns == ts(expected)


def test_rfc3164_uses_the_injected_zone() -> None:
    ict = timezone(timedelta(hours=7))
    event = parse_event(f"{H} su: + pts/0 alice:root", tz=ict)
    assert event.time_ns == ts(datetime(2026, 11, 22, 12, 27, 47, tzinfo=ict))


@pytest.fixture
def local_zone_ict(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A POSIX TZ string needs no zoneinfo files: "ICT-7" is UTC+7.
    monkeypatch.setenv("TZ", "ICT-7")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("local_zone_ict")
def test_rfc3164_defaults_to_the_local_zone() -> None:
    event = parse_event(f"{H} su: + pts/0 alice:root", tz=None)
    expected = datetime(2026, 11, 22, 12, 27, 47, tzinfo=timezone(timedelta(hours=7)))
    assert event.time_ns == ts(expected)


@pytest.mark.parametrize(
    ("stamp", "expected_ns"),
    [
        ("2026-11-22T12:27:47.123456+07:00",
         ts(datetime(2026, 11, 22, 5, 27, 47, tzinfo=UTC)) + 123_456_000),
        ("2026-11-22T12:27:47Z", ts(datetime(2026, 11, 22, 12, 27, 47, tzinfo=UTC))),
        ("2026-11-22T12:27:47.5-0130",
         ts(datetime(2026, 11, 22, 13, 57, 47, tzinfo=UTC)) + 500_000_000),
        ("2026-11-22T12:27:47.123456789+00:00",
         ts(datetime(2026, 11, 22, 12, 27, 47, tzinfo=UTC)) + 123_456_789),
        # No offset: the injected zone (UTC here).
        ("2026-11-22T12:27:47.001", ts(datetime(2026, 11, 22, 12, 27, 47, tzinfo=UTC)) + 1_000_000),
    ],
)  # fmt: skip
def test_iso8601_timestamps(stamp: str, expected_ns: int) -> None:
    event = parse_event(
        f"{stamp} web1 sshd[1300]: Accepted password for a from 1.2.3.4 port 1 ssh2"
    )
    assert event.time_ns == expected_ns
    assert event.host == "web1"
    assert event.auth.process_pid == 1300


# --- what does not become an event ------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (f"{H} CRON[1]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
         "not_auth"),
        (f"{H} systemd-logind[700]: New session 3 of user alice.", "not_auth"),
        ("this is not a syslog line", "not_syslog"),
        ("", "not_syslog"),
        (f"{H} no tag here", "not_syslog"),
        ("Feb 30 12:00:00 web1 sshd[1]: Accepted password for a from 1.2.3.4 port 1 ssh2",
         "bad_timestamp"),
        ("2026-13-01T00:00:00Z web1 sshd[1]: Accepted password for a from 1.2.3.4 port 1 ssh2",
         "bad_timestamp"),
        (f"{H} sshd[1]: Something sshd never said before", "unrecognised_sshd"),
        (f"{H} sshd-session[1]: Something new", "unrecognised_sshd-session"),
        (f"{H} sudo: unable to resolve host web1: Name or service not known", "unrecognised_sudo"),
        (f"{H} su[1]: something odd", "unrecognised_su"),
        (f"{H} useradd[1]: something odd", "unrecognised_useradd"),
        (f"{H} sshd[1]: Received disconnect from 1.2.3.4 port 22:11: Bye Bye [preauth]",
         "ignored_sshd"),
        (f"{H} sshd[1]: Server listening on 0.0.0.0 port 22.", "ignored_sshd"),
        (f"{H} sshd[1]: pam_unix(sshd:auth): check pass; user unknown", "ignored_sshd"),
        (f"{H} su[1]: pam_authenticate: Authentication failure", "ignored_su"),
        (f"{H} useradd[1]: add 'bob' to shadow group 'sudo'", "ignored_useradd"),
        (f"{H} groupadd[1]: group added to /etc/gshadow: name=devs", "ignored_groupadd"),
    ],
)  # fmt: skip
def test_lines_without_an_event_say_why(line: str, reason: str) -> None:
    assert make_parser().parse(line) == Skipped(reason)


def test_every_program_parser_is_registered() -> None:
    registered = set(PROGRAM_PARSERS.values())
    assert {sshd.parse_sshd, sudo.parse_sudo, su.parse_su, accounts.parse_account} <= registered
    for program in ("sshd", "sudo", "su", "useradd", "usermod", "userdel", "groupadd", "passwd"):
        assert program in PROGRAM_PARSERS


def test_a_custom_registry_is_honoured() -> None:
    parser = AuthLogParser(
        agent_id="a", default_host="h", clock_ns=clock_at(NOW), tz=UTC, programs={}
    )
    assert parser.parse(f"{H} sshd[1]: Invalid user x from 1.2.3.4 port 1") == Skipped("not_auth")


# Anyone who can write to the auth log (`logger -p auth.info -t 'sshd[...]'`) chooses these
# numbers: each line is either read or skipped with a reason, and never stops the source.
FAILED = "Failed password for root from 1.2.3.4 port 22 ssh2"
NEW_USER = "new user: name=x, UID=99999999999, GID=1, home=/h, shell=/bin/sh, from=none"


@pytest.mark.parametrize(
    ("line", "outcome"),
    [
        (f"Jan  1 10:00:00 web sshd[99999999999]: {FAILED}", "event"),
        (f"<34>1 9999-12-31T23:59:59Z web sshd 1 - - {FAILED}", "bad_timestamp"),
        (f"<34>1 1969-12-31T23:59:59Z web sshd 1 - - {FAILED}", "bad_timestamp"),
        (
            "Jan  1 10:00:00 web sshd[12]: " + FAILED.replace("port 22", "port 99999999999"),
            "bad_value_sshd",
        ),
        (f"Jan  1 10:00:00 web useradd[12]: {NEW_USER}", "bad_value_useradd"),
        (f"Jan  1 10:00:00 web sshd[12]: message repeated 99999999999 times: [ {FAILED}]", "event"),
    ],
)
def test_forged_numbers_never_raise(line: str, outcome: str) -> None:
    parser = AuthLogParser(agent_id="a", default_host="h", clock_ns=lambda: 1)
    parsed = parser.parse(line)
    if outcome == "event":
        assert isinstance(parsed, events_pb2.Event)
        assert parsed.auth.process_pid in (0, 12)
        assert parsed.auth.repeat_count in (0, 2**32 - 1)
    else:
        assert parsed == Skipped(outcome)
