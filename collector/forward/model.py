"""The outbox and the destination contract.

An alert (or incident) and its outbox items are written in one transaction: one item per
configured destination, keyed (destination, kind, item_id) so a retry never duplicates it.
Each destination has its own queue of items; its worker delivers at least once, with the item
id as the idempotency key the receiver deduplicates on, backs off exponentially, and after
`max_attempts` failures quarantines the item (kept, visible, retryable by an operator).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, get_args

from canhgac.v1 import alert_pb2
from collector.audit.model import AuditEntry
from collector.dossiers.incidents import Incident

ItemKind = Literal["alert", "incident"]
ITEM_KINDS: tuple[ItemKind, ...] = get_args(ItemKind)
ItemState = Literal["pending", "delivered", "quarantined"]


@dataclass(frozen=True)
class OutboxItem:
    destination: str
    kind: ItemKind
    item_id: str  # the alert id or incident id: the idempotency key
    created_ns: int
    state: ItemState = "pending"
    attempts: int = 0
    next_attempt_ns: int = 0
    last_error: str = ""  # reason class and message; never a secret
    delivered_ns: int = 0


@dataclass(frozen=True)
class Outgoing:
    """One item with what it carries, handed to a destination."""

    item: OutboxItem
    alert: alert_pb2.Alert | None = None
    incident: Incident | None = None


class DeliveryError(Exception):
    """A failed delivery. `reason` is a short bounded label for metrics (timeout, refused,
    tls, http_5xx, http_4xx, rejected, ...); `permanent` skips retries straight to quarantine
    (a payload the destination will never accept)."""

    def __init__(self, reason: str, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.permanent = permanent


class Destination(Protocol):
    """One upstream. `send` delivers a batch and returns the item ids the destination has
    accepted (all of them or a subset); it raises DeliveryError when nothing went through."""

    name: str

    async def send(self, batch: Sequence[Outgoing]) -> set[str]: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class DestinationHealth:
    destination: str
    backlog: int
    quarantined: int
    oldest_pending_ns: int  # 0 when the backlog is empty
    last_success_ns: int
    failures_by_reason: dict[str, int]


class OutboxStore(Protocol):
    """The outbox in the collector's database (Store extends it)."""

    def enqueue(
        self, destinations: Sequence[str], kind: ItemKind, item_ids: Sequence[str], *, at_ns: int
    ) -> int:
        """Add items (ignoring those already there); returns how many were new. Used inside
        `insert_alerts(..., outbox=...)` and `open_or_attach` so they share the transaction."""
        ...

    def due_items(self, destination: str, now_ns: int, limit: int) -> list[OutboxItem]:
        """Pending items whose next attempt is due, oldest first."""
        ...

    def mark_delivered(
        self, destination: str, kind: ItemKind, item_ids: Sequence[str], at_ns: int
    ) -> None: ...

    def mark_failed(
        self,
        destination: str,
        kind: ItemKind,
        item_ids: Sequence[str],
        *,
        error: str,
        next_attempt_ns: int,
        max_attempts: int,
        permanent: bool = False,
    ) -> list[str]:
        """Count an attempt; quarantine items at max_attempts (or permanent); returns the ids
        quarantined now."""
        ...

    def outbox_items(
        self, destination: str | None = None, state: ItemState | None = None, limit: int = 100
    ) -> list[OutboxItem]: ...

    def retry_quarantined(
        self,
        destination: str,
        kind: ItemKind,
        item_id: str,
        now_ns: int,
        audit: AuditEntry | None = None,
    ) -> bool:
        """Put a quarantined item back to pending with attempts reset; False when unknown.
        `audit` is appended to the audit chain in the same transaction when the retry happens."""
        ...

    def outbox_destinations(self) -> list[str]:
        """Every destination with pending or quarantined items, configured or not: items of
        a destination removed from the configuration wait there, and must stay visible."""
        ...

    def outbox_health(self, destination: str) -> DestinationHealth: ...
