"""`canhgac-collector users ...` and `canhgac-collector api-tokens ...`.

They act only through the store, so they work while the collector runs: a disabled user or a
revoked token is refused at its next request. A password is read from --password-file or a
prompt, never from the command line; an API token is printed once and never again.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from canhgac.errors import ConfigError
from collector.audit.cli import record_cli
from collector.enroll.cli import open_store
from collector.enroll.tokens import SYSTEM_ID_RE, parse_duration
from collector.web.auth.passwords import MIN_LENGTH, hash_password
from collector.web.auth.policy import token_usable, user_usable
from collector.web.auth.tokens import new_api_token
from collector.web.auth.users import ROLES, ApiToken, User, check_role, check_username

Clock = Callable[[], int]
WithConfig = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]


def _when(ns: int) -> str:
    if not ns:
        return ""
    return dt.datetime.fromtimestamp(ns / 1e9).astimezone().strftime("%Y-%m-%d %H:%M:%S%z")


def _systems(values: list[str], role: str) -> tuple[str, ...]:
    for value in values:
        if not SYSTEM_ID_RE.match(value):
            raise ConfigError("not a valid system id", location=f"--system {value}")
    if role == "soc" and not values:
        raise ConfigError("a soc principal needs its contracted systems", location="--system")
    return tuple(sorted(set(values)))


def _valid_until(text: str | None, role: str, now_ns: int) -> int:
    if text is None:
        if role == "assessor":
            raise ConfigError("an assessor's access is time-boxed", location="--valid-until")
        return 0
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise ConfigError("expected YYYY-MM-DD", location="--valid-until") from None
    # Valid through the whole given day, local time.
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time()).astimezone()
    ns = int(end.timestamp()) * 10**9
    if ns <= now_ns:
        raise ConfigError("the date is already past", location="--valid-until")
    return ns


def _read_password(ns: argparse.Namespace) -> str:
    if ns.password_file == "-":  # noqa: S105  # "-" names standard input, not a password
        return sys.stdin.readline().rstrip("\r\n")
    if ns.password_file:
        try:
            return Path(ns.password_file).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(
                f"cannot read it: {exc.strerror}", location="--password-file"
            ) from None
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise ConfigError("the passwords differ", location="password")
    return first


def cmd_users_add(ns: argparse.Namespace, clock: Clock = time.time_ns) -> int:
    role = check_role(ns.role)
    now = clock()
    username = check_username(ns.username)
    systems = _systems(ns.system, role)
    valid_until = _valid_until(ns.valid_until, role, now)
    password = _read_password(ns)
    try:
        digest = hash_password(password)
    except ValueError:
        raise ConfigError(f"at least {MIN_LENGTH} characters", location="password") from None
    user = User(
        username=username,
        role=role,
        created_ns=now,
        display_name=ns.display_name or "",
        systems=systems,
        valid_until_ns=valid_until,
        password_hash=digest,
    )
    store = open_store(ns)
    store.add_user(user)
    # Never the password or its hash.
    detail = {"role": role, "systems": list(systems), "valid_until_ns": valid_until}
    record_cli(store, "user.add", username, detail, clock=clock)
    print(f"user {username} added ({role})")
    return 0


def _user_row(u: User, now: int) -> dict[str, Any]:
    return {
        "username": u.username,
        "role": u.role,
        "display_name": u.display_name,
        "systems": list(u.systems),
        "valid_until": _when(u.valid_until_ns),
        "state": "active" if user_usable(u, now) else ("disabled" if u.disabled_ns else "expired"),
        "created": _when(u.created_ns),
    }


def cmd_users_list(ns: argparse.Namespace, clock: Clock = time.time_ns) -> int:
    now = clock()
    for user in open_store(ns).list_users():
        row = _user_row(user, now)
        if ns.json:
            print(json.dumps(row, ensure_ascii=False))
        else:
            scope = f" systems={','.join(user.systems)}" if user.systems else ""
            until = f" until={row['valid_until']}" if user.valid_until_ns else ""
            print(f"{user.username}  {user.role}  {row['state']}{scope}{until}")
    return 0


def cmd_users_disable(ns: argparse.Namespace, clock: Clock = time.time_ns) -> int:
    store = open_store(ns)
    if not store.disable_user(ns.username, clock()):
        print(f"{ns.username}: no such active user", file=sys.stderr)
        return 1
    record_cli(store, "user.disable", ns.username, clock=clock)
    print(f"user {ns.username} disabled")
    return 0


def cmd_api_tokens_create(ns: argparse.Namespace, clock: Clock = time.time_ns) -> int:
    role = check_role(ns.role)
    systems = _systems(ns.system, role)
    try:
        ttl = parse_duration(ns.ttl)
    except ValueError as exc:
        raise ConfigError(str(exc), location="--ttl") from None
    text, record = new_api_token(role, clock(), ttl, systems=systems, label=ns.label or "")
    store = open_store(ns)
    store.create_api_token(record)
    # The id, role, scope and expiry: never the secret or its hash.
    detail = {
        "role": role,
        "systems": list(systems),
        "expires_ns": record.expires_ns,
        "label": record.label,
    }
    record_cli(store, "api_token.create", record.token_id, detail, clock=clock)
    print(
        f"# id {record.token_id}, role {role}, expires {_when(record.expires_ns)}", file=sys.stderr
    )
    print(text)
    return 0


def _token_row(t: ApiToken, now: int) -> dict[str, Any]:
    state = "active" if token_usable(t, now) else ("revoked" if t.revoked_ns else "expired")
    return {
        "id": t.token_id,
        "role": t.role,
        "systems": list(t.systems),
        "label": t.label,
        "created": _when(t.created_ns),
        "expires": _when(t.expires_ns),
        "state": state,
    }


def cmd_api_tokens_list(ns: argparse.Namespace, clock: Clock = time.time_ns) -> int:
    now = clock()
    for token in open_store(ns).list_api_tokens():
        row = _token_row(token, now)
        if ns.json:
            print(json.dumps(row, ensure_ascii=False))
        else:
            scope = f" systems={','.join(token.systems)}" if token.systems else ""
            print(
                f"{token.token_id}  {token.role}  {row['state']}  expires={row['expires']}{scope}"
            )
    return 0


def cmd_api_tokens_revoke(ns: argparse.Namespace, clock: Clock = time.time_ns) -> int:
    store = open_store(ns)
    if not store.revoke_api_token(ns.token_id, clock()):
        print(f"{ns.token_id}: no such unrevoked token", file=sys.stderr)
        return 1
    record_cli(store, "api_token.revoke", ns.token_id, clock=clock)
    print(f"token {ns.token_id} revoked")
    return 0


def add_auth_commands(sub: Any, with_config: WithConfig) -> None:
    users = sub.add_parser("users", help="console users and their roles").add_subparsers(
        dest="users_command", required=True
    )
    ua = with_config(users.add_parser("add", help="add a user (password from a file or stdin)"))
    ua.add_argument("username", metavar="NAME")
    ua.add_argument("--role", required=True, choices=ROLES)
    ua.add_argument(
        "--system",
        action="append",
        default=[],
        help="system in scope (soc, assessor: they see only these)",
    )
    ua.add_argument("--valid-until", help="last day of access, YYYY-MM-DD (assessor: required)")
    ua.add_argument("--display-name", help="full name shown in the console")
    ua.add_argument(
        "--password-file", help="read the password from this file ('-': standard input)"
    )
    ua.set_defaults(fn=cmd_users_add)
    ul = with_config(users.add_parser("list", help="users, roles and state (never a password)"))
    ul.add_argument("--json", action="store_true", help="one JSON object per line")
    ul.set_defaults(fn=cmd_users_list)
    ud = with_config(users.add_parser("disable", help="refuse a user from now on"))
    ud.add_argument("username", metavar="NAME")
    ud.set_defaults(fn=cmd_users_disable)

    tokens = sub.add_parser("api-tokens", help="bearer tokens for scrapers and scripts")
    tsub = tokens.add_subparsers(dest="api_tokens_command", required=True)
    tc = with_config(tsub.add_parser("create", help="create a token and print it once"))
    tc.add_argument("--role", required=True, choices=ROLES)
    tc.add_argument(
        "--system",
        action="append",
        default=[],
        help="system in scope (soc, assessor: they see only these)",
    )
    tc.add_argument("--ttl", default="90d", help="validity: 30m, 24h, 90d (default 90d)")
    tc.add_argument("--label", help="what the token is for")
    tc.set_defaults(fn=cmd_api_tokens_create)
    tl = with_config(tsub.add_parser("list", help="tokens and their state (never the secret)"))
    tl.add_argument("--json", action="store_true", help="one JSON object per line")
    tl.set_defaults(fn=cmd_api_tokens_list)
    tr = with_config(tsub.add_parser("revoke", help="make a token unusable"))
    tr.add_argument("token_id", metavar="ID")
    tr.set_defaults(fn=cmd_api_tokens_revoke)
