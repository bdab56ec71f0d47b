"""Audit records and the hash chain that links them.

Every record holds the SHA-256 of the previous record (`prev_hash`; the first holds
GENESIS) and its own `hash`, computed by `record_hash` over a canonical JSON of every other
field. Records are only appended, in one write transaction that reads the last hash, so the
chain cannot fork; `verify_chain` proves it intact or names the first broken record.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditEntry:
    """What is being recorded: who did what to which object, with details (never a secret).

    action is a dotted name, e.g. "alert.acknowledge", "user.add", "api_token.revoke",
    "agent.revoke", "enrollment_token.create", "system.approve", "evidence.export",
    "rules.reload". actor is a user name, "token:<id>", or "cli:<os user>".
    """

    actor: str
    action: str
    target: str = ""
    detail: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditRecord:
    seq: int  # 1, 2, 3, ... without gaps
    at_ns: int
    actor: str
    action: str
    target: str
    detail: Mapping[str, object]
    prev_hash: str
    hash: str


def canonical(seq: int, at_ns: int, entry: AuditEntry, prev_hash: str) -> bytes:
    """The exact bytes a record's hash covers."""
    body = {
        "seq": seq,
        "at_ns": at_ns,
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "detail": dict(entry.detail),
        "prev_hash": prev_hash,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(seq: int, at_ns: int, entry: AuditEntry, prev_hash: str) -> str:
    return hashlib.sha256(canonical(seq, at_ns, entry, prev_hash)).hexdigest()


@dataclass(frozen=True)
class ChainCheck:
    """The result of verifying a run of records: ok, or the first broken record and why."""

    ok: bool
    checked: int
    last_seq: int
    last_hash: str
    broken_seq: int = 0
    reason: str = ""


def verify_chain(
    records: Iterable[AuditRecord], *, prev_hash: str = GENESIS, first_seq: int = 1
) -> ChainCheck:
    """Verify records in seq order, starting after a record whose hash is `prev_hash`.

    Checks for each record: seq follows the previous one, prev_hash is the previous hash,
    and hash is the hash of its content. Streams: any iterable, constant memory.
    """
    expected_seq = first_seq
    checked = 0
    for record in records:
        entry = AuditEntry(record.actor, record.action, record.target, record.detail)
        if record.seq != expected_seq:
            reason = f"expected record {expected_seq}, found {record.seq} (missing or reordered)"
            return ChainCheck(False, checked, expected_seq - 1, prev_hash, record.seq, reason)
        if record.prev_hash != prev_hash:
            reason = "prev_hash does not match the previous record's hash"
            return ChainCheck(False, checked, expected_seq - 1, prev_hash, record.seq, reason)
        if record_hash(record.seq, record.at_ns, entry, record.prev_hash) != record.hash:
            reason = "content does not match its hash (modified)"
            return ChainCheck(False, checked, expected_seq - 1, prev_hash, record.seq, reason)
        prev_hash = record.hash
        expected_seq += 1
        checked += 1
    return ChainCheck(True, checked, expected_seq - 1, prev_hash)


class AuditStore(Protocol):
    """The audit log in the collector's database (Store extends it)."""

    def append_audit(self, entry: AuditEntry, *, at_ns: int) -> AuditRecord:
        """Append one record to the chain, atomically (safe against a concurrent CLI)."""
        ...

    def audit_records(
        self,
        *,
        after_seq: int = 0,
        limit: int = 100,
        actor: str | None = None,
        action_prefix: str | None = None,
        target: str | None = None,
        from_ns: int | None = None,
        before_ns: int | None = None,
    ) -> list[AuditRecord]:
        """Records with seq > after_seq in seq order, optionally filtered."""
        ...

    def last_audit_record(self) -> AuditRecord | None: ...
