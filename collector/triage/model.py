"""Triage of alerts: the actions an operator takes, their history, suppressions, and the
filtered, scoped, cursor-paginated alert query the console and the REST API share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, get_args

from canhgac.errors import CanhGacError

if TYPE_CHECKING:
    # Only for annotations: collector.storage.base imports this module for its Store protocol.
    from collector.storage.base import StoredAlert

TriageAction = Literal[
    "acknowledge", "assign", "comment", "resolve", "false_positive", "suppress", "reopen"
]
TRIAGE_ACTIONS: tuple[TriageAction, ...] = get_args(TriageAction)
AlertStatus = Literal["open", "acknowledged", "resolved", "false_positive", "suppressed"]
ALERT_STATUSES: tuple[AlertStatus, ...] = get_args(AlertStatus)
# The status each action leaves an alert in (None: unchanged).
STATUS_AFTER: dict[TriageAction, AlertStatus | None] = {
    "acknowledge": "acknowledged",
    "assign": None,
    "comment": None,
    "resolve": "resolved",
    "false_positive": "false_positive",
    "suppress": "suppressed",
    "reopen": "open",
}

# Limits `triage_alert` enforces before anything is written.
MAX_COMMENT_CHARS = 4000
MAX_SUPPRESSION_NS = 30 * 24 * 3600 * 10**9
MAX_ALERT_QUERY_LIMIT = 1000


class TriageError(CanhGacError):
    """A refused triage action (unknown action, missing assignee, bad suppression period, a
    comment too long); nothing was written. `location` names the alert."""


@dataclass(frozen=True)
class TriageEntry:
    """One action on one alert, as kept in its history."""

    alert_id: str
    at_ns: int
    actor: str
    action: TriageAction
    status_after: str
    assignee: str = ""
    comment: str = ""
    # For "suppress": the end of the suppression period.
    until_ns: int = 0


@dataclass(frozen=True)
class Suppression:
    """Alerts of `rule_id` on `host` (and `system_id`) raised before `until_ns` are stored
    with status "suppressed" instead of "open": recorded and counted, not pushed live."""

    suppression_id: str
    rule_id: str
    host: str
    system_id: str
    created_ns: int
    until_ns: int
    actor: str
    reason: str = ""
    source_alert_id: str = ""


@dataclass(frozen=True)
class AlertQuery:
    """A filtered page of alerts, newest first by default.

    `systems`: None = every system; otherwise only alerts whose system_id is in the set (a soc
    or assessor caller's contract; an empty set sees nothing). Cursors are row ids: `before_row`
    pages backwards (newest first), `after_row` pulls forwards ("everything since X", oldest
    first) and wins when both are given.
    """

    min_severity: int = 0
    system_id: str | None = None
    rule_id: str | None = None
    status: str | None = None
    host: str | None = None
    systems: frozenset[str] | None = None
    after_row: int | None = None
    before_row: int | None = None
    limit: int = 50


class TriageStore(Protocol):
    """Triage and alert queries (Store extends it)."""

    def query_alerts(self, query: AlertQuery) -> list[StoredAlert]: ...

    def triage_alert(
        self,
        alert_id: str,
        action: TriageAction,
        *,
        actor: str,
        at_ns: int,
        assignee: str = "",
        comment: str = "",
        until_ns: int = 0,
    ) -> StoredAlert | None:
        """Apply one action: the alert's status/assignee, its history row, for "suppress" a
        Suppression of the alert's rule and host until `until_ns`, and an audit record
        ("alert.<action>") — all in one transaction. None when the alert is unknown."""
        ...

    def triage_history(self, alert_id: str) -> list[TriageEntry]:
        """The alert's history, oldest first."""
        ...

    def related_alerts(self, alert_id: str, *, limit: int = 20) -> list[StoredAlert]:
        """Other alerts of the same incident id, or else of the same rule and host, newest
        first."""
        ...

    def active_suppressions(self, now_ns: int) -> list[Suppression]: ...

    def apply_suppressions(self, alert_ids: Sequence[str], now_ns: int) -> list[str]:
        """Mark the given (just stored, open) alerts that an active suppression covers as
        "suppressed", with a history row by actor "suppression:<id>"; returns their ids."""
        ...
