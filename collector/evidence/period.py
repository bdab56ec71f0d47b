"""The period of an export: parsed, and refused when reversed or absurd."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from collector.dossiers.clock import VN_TZ
from collector.evidence.errors import EvidenceError

EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
MAX_SPAN = dt.timedelta(days=3653)  # ten years
FUTURE_SLACK = dt.timedelta(days=1)


@dataclass(frozen=True)
class Period:
    """[start, end): what an export covers."""

    start: dt.datetime
    end: dt.datetime

    @property
    def start_ns(self) -> int:
        return _ns(self.start)

    @property
    def end_ns(self) -> int:
        return _ns(self.end)

    def to_json(self) -> dict[str, object]:
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "from_ns": self.start_ns,
            "to_ns": self.end_ns,
        }


def _ns(t: dt.datetime) -> int:
    return int(t.timestamp()) * 10**9 + t.microsecond * 1000


def parse_when(text: str, *, location: str) -> dt.datetime:
    """YYYY-MM-DD (midnight, Vietnam time) or an ISO date-time (Vietnam time if no zone)."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise EvidenceError("expected YYYY-MM-DD or an ISO date-time", location=location) from None
    return value if value.tzinfo else value.replace(tzinfo=VN_TZ)


def check_period(start: dt.datetime, end: dt.datetime, now: dt.datetime) -> Period:
    """The period, or EvidenceError naming what is wrong with it."""
    if start.tzinfo is None or end.tzinfo is None:
        raise EvidenceError("times must carry a time zone", location="--from/--to")
    if start >= end:
        raise EvidenceError("--from must be before --to", location="--from/--to")
    if start < EARLIEST:
        raise EvidenceError("the period starts before 2000", location="--from")
    if end - start > MAX_SPAN:
        raise EvidenceError("the period is longer than ten years", location="--from/--to")
    if end > now + FUTURE_SLACK:
        raise EvidenceError("the period ends more than a day in the future", location="--to")
    return Period(start, end)
