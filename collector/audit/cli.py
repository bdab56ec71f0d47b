"""`canhgac-collector audit verify` and `canhgac-collector audit list`, and `record_cli`, the
one call every state-changing CLI command makes to leave its audit record.

Both commands read through the store in pages, so they run in constant memory beside a
running collector. verify exits 0 when the chain is intact and 1 at the first broken record.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import getpass
import json
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from canhgac.errors import ConfigError
from collector.audit.model import AuditEntry, AuditRecord, AuditStore, verify_chain

if TYPE_CHECKING:
    from collector.storage.base import Store

Clock = Callable[[], int]
WithConfig = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]
PAGE = 1000


def cli_actor() -> str:
    """`cli:<os user>`: who ran the command, as the operating system knows them."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no login name and no passwd entry (a bare container)
        return "cli:unknown"


def record_cli(
    store: AuditStore,
    action: str,
    target: str = "",
    detail: Mapping[str, object] | None = None,
    *,
    clock: Clock = time.time_ns,
) -> AuditRecord:
    """Append the audit record of a CLI command. `detail` must never hold a secret: no
    password, password hash, token secret or its hash."""
    entry = AuditEntry(cli_actor(), action, target, dict(detail or {}))
    return store.append_audit(entry, at_ns=clock())


def _open(ns: argparse.Namespace) -> Store:
    from collector.enroll.cli import open_store  # the app's wiring, imported only when run

    return open_store(ns)


def _pages(store: AuditStore, **filters: Any) -> Iterator[AuditRecord]:
    after = 0
    while page := store.audit_records(after_seq=after, limit=PAGE, **filters):
        yield from page
        after = page[-1].seq


def _when(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9).astimezone().isoformat(timespec="seconds")


def _since_ns(text: str) -> int:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            "expected an ISO date or time, e.g. 2026-11-30T08:00", location="--since"
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # local time, as the operator reads the clock
    return int(moment.timestamp() * 1e9)


def _record_json(r: AuditRecord) -> dict[str, Any]:
    return {
        "seq": r.seq,
        "at": _when(r.at_ns),
        "at_ns": r.at_ns,
        "actor": r.actor,
        "action": r.action,
        "target": r.target,
        "detail": dict(r.detail),
        "prev_hash": r.prev_hash,
        "hash": r.hash,
    }


def cmd_audit_verify(ns: argparse.Namespace) -> int:
    store = _open(ns)
    try:
        check = verify_chain(_pages(store))
    finally:
        store.close()
    if ns.json:
        print(
            json.dumps(
                {
                    "ok": check.ok,
                    "records": check.checked,
                    "last_seq": check.last_seq,
                    "last_hash": check.last_hash,
                    "broken_seq": check.broken_seq,
                    "reason": check.reason,
                }
            )
        )
    elif check.ok:
        print(f"audit log intact: {check.checked} records, last hash {check.last_hash}")
    else:
        print(
            f"audit log BROKEN at record {check.broken_seq}: {check.reason} "
            f"({check.checked} records before it verified)",
            file=sys.stderr,
        )
    return 0 if check.ok else 1


def cmd_audit_list(ns: argparse.Namespace) -> int:
    filters: dict[str, Any] = {"actor": ns.actor, "action_prefix": ns.action}
    if ns.since:
        filters["from_ns"] = _since_ns(ns.since)
    store = _open(ns)
    try:
        # The newest N matching records, kept in a bounded queue while paging through.
        latest = collections.deque(_pages(store, **filters), maxlen=ns.limit)
    finally:
        store.close()
    for r in latest:
        if ns.json:
            print(json.dumps(_record_json(r), ensure_ascii=False))
        else:
            detail = json.dumps(dict(r.detail), ensure_ascii=False, sort_keys=True)
            target = f"  {r.target}" if r.target else ""
            print(f"{r.seq}  {_when(r.at_ns)}  {r.actor}  {r.action}{target}  {detail}")
    return 0


def _limit(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 100_000:
        raise argparse.ArgumentTypeError("must be 1..100000")
    return value


def add_audit_commands(sub: Any, with_config: WithConfig) -> None:
    audit = sub.add_parser("audit", help="the tamper-evident audit log").add_subparsers(
        dest="audit_command", required=True
    )
    av = with_config(audit.add_parser("verify", help="check the hash chain end to end"))
    av.add_argument("--json", action="store_true", help="the result as one JSON object")
    av.set_defaults(fn=cmd_audit_verify)
    al = with_config(audit.add_parser("list", help="the most recent audit records"))
    al.add_argument("--actor", help="only this actor (a user, token:<id>, cli:<user>)")
    al.add_argument("--action", help="only actions starting with this, e.g. 'alert.'")
    al.add_argument("--since", help="only records from this ISO date or time (local time)")
    al.add_argument("--limit", type=_limit, default=100, help="at most N, the newest (100)")
    al.add_argument("--json", action="store_true", help="one JSON object per line")
    al.set_defaults(fn=cmd_audit_list)
