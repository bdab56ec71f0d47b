"""`canhgac-collector forward ...`: the health of each upstream and its queue; retry an item.

These commands act through the store, so they work while the collector runs: a retried item is
taken by the running forward worker at its next poll.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from collections.abc import Callable
from typing import Any

from canhgac.errors import ConfigError
from collector import config as cfgmod
from collector.audit.cli import cli_actor
from collector.audit.model import AuditEntry
from collector.forward.model import ITEM_KINDS, DestinationHealth, OutboxItem
from collector.forward.receiver.cli import add_receiver_commands

WithConfig = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]


def local_time(ns: int) -> str:
    """A Unix time in ns as local date and time with its offset; "" for 0 (never)."""
    if not ns:
        return ""
    return dt.datetime.fromtimestamp(ns / 1e9).astimezone().strftime("%Y-%m-%d %H:%M:%S%z")


def _open(ns: argparse.Namespace) -> Any:
    from collector.enroll.cli import open_store  # the app's wiring, imported only when run

    return open_store(ns)


def _status_row(
    h: DestinationHealth, last_error: str, now_ns: int, *, configured: bool = True
) -> dict[str, Any]:
    age = (now_ns - h.oldest_pending_ns) / 1e9 if h.oldest_pending_ns else 0.0
    return {
        "destination": h.destination,
        "configured": configured,
        "backlog": h.backlog,
        "oldest_pending_s": round(max(age, 0.0), 1),
        "quarantined": h.quarantined,
        "last_success": local_time(h.last_success_ns),
        "failures_by_reason": h.failures_by_reason,
        "last_error": last_error,
    }


def cmd_forward_status(ns: argparse.Namespace) -> int:
    config = cfgmod.load(ns.config)
    store = _open(ns)
    now = time.time_ns()
    names = [d.name for d in config.forward.destinations]
    # A destination removed from the configuration leaves its items waiting: show them.
    orphans = [d for d in store.outbox_destinations() if d not in names]
    rows = []
    for name in [*names, *orphans]:
        health = store.outbox_health(name)
        failed = [
            i
            for state in ("pending", "quarantined")
            for i in store.outbox_items(destination=name, state=state, limit=1000)
            if i.last_error
        ]
        last_error = max(failed, key=lambda i: i.next_attempt_ns).last_error if failed else ""
        rows.append(_status_row(health, last_error, now, configured=name in names))
    if ns.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        return 0
    if not rows:
        print("no destinations configured (forward.destinations)")
    for r in rows:
        print(
            f"{r['destination']}: backlog {r['backlog']} (oldest {r['oldest_pending_s']} s), "
            f"quarantined {r['quarantined']}, last success {r['last_success'] or 'never'}"
            + (f", last error: {r['last_error']}" if r["last_error"] else "")
            + ("" if r["configured"] else " (not configured: nothing will deliver these)")
        )
    return 0


def _item_row(i: OutboxItem) -> dict[str, Any]:
    return {
        "destination": i.destination,
        "kind": i.kind,
        "id": i.item_id,
        "state": i.state,
        "attempts": i.attempts,
        "queued": local_time(i.created_ns),
        "next_attempt": local_time(i.next_attempt_ns) if i.state == "pending" else "",
        "delivered": local_time(i.delivered_ns),
        "last_error": i.last_error,
    }


def cmd_forward_list(ns: argparse.Namespace) -> int:
    store = _open(ns)
    items = store.outbox_items(destination=ns.destination, state=ns.state, limit=ns.limit)
    for i in items:
        row = _item_row(i)
        if ns.json:
            print(json.dumps(row, ensure_ascii=False))
        else:
            print(
                f"{row['destination']}  {row['kind']:8}  {row['id']}  {row['state']:11}  "
                f"attempts={row['attempts']}  {row['last_error']}"
            )
    return 0


def cmd_forward_retry(ns: argparse.Namespace) -> int:
    store = _open(ns)
    entry = AuditEntry(
        cli_actor(), "forward.retry", f"{ns.destination}/{ns.kind}/{ns.id}", {"kind": ns.kind}
    )
    if not store.retry_quarantined(ns.destination, ns.kind, ns.id, time.time_ns(), audit=entry):
        raise ConfigError(
            "no quarantined item of this destination, kind and id (see `forward list`)",
            location=f"{ns.destination} {ns.kind} {ns.id}",
        )
    print(f"{ns.destination} {ns.kind} {ns.id}: queued again")
    return 0


def add_forward_commands(sub: Any, with_config: WithConfig) -> None:
    forward = sub.add_parser(
        "forward", help="upstream forwarding: health, queue, retry"
    ).add_subparsers(dest="forward_command", required=True)
    fs = with_config(forward.add_parser("status", help="per destination: backlog, last success"))
    fs.add_argument("--json", action="store_true", help="one JSON object per line")
    fs.set_defaults(fn=cmd_forward_status)
    fl = with_config(forward.add_parser("list", help="outbox items, oldest first"))
    fl.add_argument("--destination")
    fl.add_argument("--state", choices=("pending", "delivered", "quarantined"))
    fl.add_argument("--limit", type=int, default=100)
    fl.add_argument("--json", action="store_true", help="one JSON object per line")
    fl.set_defaults(fn=cmd_forward_list)
    fr = with_config(forward.add_parser("retry", help="queue a quarantined item again"))
    fr.add_argument("destination", metavar="DESTINATION")
    fr.add_argument("kind", metavar="KIND", choices=ITEM_KINDS)
    fr.add_argument("id", metavar="ID")
    fr.set_defaults(fn=cmd_forward_retry)
    add_receiver_commands(sub)
