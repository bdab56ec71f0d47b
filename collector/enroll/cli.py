"""`canhgac-collector tokens ...` and `canhgac-collector agents revoke`.

These run as separate processes next to the collector and act only through the store: the
collector sees a revocation at its next poll (ingest.revocation_poll_ms).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from canhgac.errors import ConfigError
from collector import config as cfgmod
from collector.audit.cli import record_cli
from collector.enroll.naming import MAX_ENROLLED_ID, enrollable
from collector.enroll.tokens import SYSTEM_ID_RE, new_token, parse_duration
from collector.storage.base import Store
from collector.storage.enrollment import EnrollmentToken

Clock = Callable[[], int]


def open_store(ns: argparse.Namespace) -> Store:
    """The configured store, migrated: these commands may run before the collector ever did."""
    from collector.app import open_configured_store

    store = open_configured_store(cfgmod.load(ns.config)).store
    store.migrate()
    return store


def _when(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9).astimezone().strftime("%Y-%m-%d %H:%M:%S%z")


def _token_row(t: EnrollmentToken, now: int) -> dict[str, Any]:
    return {
        "id": t.token_id,
        "created": _when(t.created_ns),
        "expires": _when(t.expires_ns),
        "state": t.state(now),
        "used_by": t.used_by,
        "system_id": t.system_id,
        "agent_id": t.agent_id,
    }


def cmd_tokens_create(ns: argparse.Namespace, clock: Clock = time.time_ns) -> int:
    if ns.agent_id and not enrollable(ns.agent_id):
        raise ConfigError(
            f"must be 1-{MAX_ENROLLED_ID} characters of letters, digits, '.', '_' or '-'",
            location="--agent-id",
        )
    if ns.system and not SYSTEM_ID_RE.match(ns.system):
        raise ConfigError(
            "must be 1-128 characters of letters, digits, '.', '_', ':' or '-'",
            location="--system",
        )
    try:
        ttl = parse_duration(ns.ttl)
    except ValueError as exc:
        raise ConfigError(str(exc), location="--ttl") from None
    text, record = new_token(clock(), ttl, system_id=ns.system or "", agent_id=ns.agent_id or "")
    store = open_store(ns)
    try:
        store.create_token(record)
        # The id, binding and expiry: never the token or its hash.
        detail = {
            "system_id": record.system_id,
            "agent_id": record.agent_id,
            "expires_ns": record.expires_ns,
        }
        record_cli(store, "enrollment_token.create", record.token_id, detail, clock=clock)
    finally:
        store.close()
    # The token alone on stdout (for `TOKEN=$(...)`); what it is for on stderr.
    print(text, flush=True)
    bound = f", agent id {record.agent_id}" if record.agent_id else ""
    system = f", system {record.system_id}" if record.system_id else ""
    print(
        f"token {record.token_id}: single use, expires {_when(record.expires_ns)}{bound}{system}."
        " It is shown only this once.",
        file=sys.stderr,
    )
    return 0


def cmd_tokens_list(ns: argparse.Namespace, clock: Clock = time.time_ns) -> int:
    store = open_store(ns)
    try:
        tokens = store.list_tokens()
    finally:
        store.close()
    now = clock()
    for t in tokens:
        row = _token_row(t, now)
        if ns.json:
            print(json.dumps(row, ensure_ascii=False))
            continue
        state = f"used by {t.used_by}" if t.used_ns else row["state"]
        print(
            f"{t.token_id}  created={row['created']}  expires={row['expires']}  {state}  "
            f"system={t.system_id or '-'}  agent_id={t.agent_id or '(host name)'}"
        )
    if not tokens and not ns.json:
        print("no tokens")
    return 0


def cmd_tokens_revoke(ns: argparse.Namespace, clock: Clock = time.time_ns) -> int:
    store = open_store(ns)
    try:
        if not store.revoke_token(ns.token_id, clock()):
            known = store.get_token(ns.token_id)
            why = "unknown" if known is None else f"already {known.state(clock())}"
            print(f"error: token {ns.token_id} not revoked: {why}", file=sys.stderr)
            return 2
        record_cli(store, "enrollment_token.revoke", ns.token_id, clock=clock)
    finally:
        store.close()
    print(f"token {ns.token_id} revoked")
    return 0


def cmd_agents_revoke(ns: argparse.Namespace, clock: Clock = time.time_ns) -> int:
    store = open_store(ns)
    try:
        count = store.revoke_agent(ns.agent_id, clock())
        if count is not None:
            detail = {"certificates": count}
            record_cli(store, "agent.revoke", ns.agent_id, detail, clock=clock)
    finally:
        store.close()
    if count is None:
        print(f"error: unknown agent {ns.agent_id!r}", file=sys.stderr)
        return 2
    poll = cfgmod.load(ns.config).ingest.revocation_poll_ms / 1000
    print(
        f"agent {ns.agent_id} revoked ({count} certificate(s)): its stream closes within "
        f"{poll:g} s, and it can neither reconnect nor renew. Enrolling it again needs a new "
        f"token: tokens create --agent-id {ns.agent_id}"
    )
    return 0


def add_token_commands(
    sub: Any, with_config: Callable[[argparse.ArgumentParser], argparse.ArgumentParser]
) -> None:
    tokens = sub.add_parser("tokens", help="single-use enrollment tokens").add_subparsers(
        dest="tokens_command", required=True
    )
    tc = with_config(tokens.add_parser("create", help="create a token and print it once"))
    tc.add_argument("--ttl", default="24h", help="validity: 90s, 30m, 24h, 7d (default 24h)")
    tc.add_argument("--system", help="information system the agent will belong to")
    tc.add_argument("--agent-id", help="agent id to give (default: from the agent's host name)")
    tc.set_defaults(fn=cmd_tokens_create)
    tl = with_config(tokens.add_parser("list", help="tokens and their state (never the secret)"))
    tl.add_argument("--json", action="store_true", help="one JSON object per line")
    tl.set_defaults(fn=cmd_tokens_list)
    tr = with_config(tokens.add_parser("revoke", help="make an unused token unusable"))
    tr.add_argument("token_id", metavar="ID")
    tr.set_defaults(fn=cmd_tokens_revoke)


def add_agent_revoke(
    agents: Any, with_config: Callable[[argparse.ArgumentParser], argparse.ArgumentParser]
) -> None:
    ar = with_config(
        agents.add_parser("revoke", help="revoke an agent: close its stream, refuse it from now on")
    )
    ar.add_argument("agent_id", metavar="ID")
    ar.set_defaults(fn=cmd_agents_revoke)
