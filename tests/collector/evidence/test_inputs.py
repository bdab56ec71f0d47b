"""Bad requests are refused with errors that say what is wrong, before anything is written."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from collector.dossiers.clock import VN_TZ
from collector.evidence.errors import EvidenceError
from collector.evidence.export import export_bundle
from collector.evidence.period import check_period, parse_when
from collector.storage.sqlite import SqliteStore
from tests.collector.evidence import world

NOW = world.NOW


def d(year: int, month: int, day: int) -> dt.datetime:
    return dt.datetime(year, month, day, tzinfo=VN_TZ)


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (d(2026, 11, 2), d(2026, 11, 1), "before --to"),
        (d(2026, 11, 1), d(2026, 11, 1), "before --to"),
        (d(1999, 12, 31), d(2000, 2, 1), "before 2000"),
        (d(2010, 1, 1), d(2026, 1, 1), "ten years"),
        (d(2026, 11, 1), d(2026, 12, 5), "future"),
    ],
)
def test_reversed_and_absurd_periods_are_refused(
    start: dt.datetime, end: dt.datetime, message: str
) -> None:
    with pytest.raises(EvidenceError, match=message):
        check_period(start, end, NOW)


def test_a_period_ending_tomorrow_is_allowed() -> None:
    period = check_period(d(2026, 11, 1), NOW + dt.timedelta(hours=20), NOW)
    assert period.start_ns < period.end_ns


def test_dates_are_read_in_vietnam_time_unless_a_zone_is_given() -> None:
    assert parse_when("2026-11-01", location="--from") == d(2026, 11, 1)
    utc = parse_when("2026-11-01T00:00:00+00:00", location="--from")
    assert utc == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    with pytest.raises(EvidenceError, match="YYYY-MM-DD"):
        parse_when("last tuesday", location="--from")


def test_an_unknown_system_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "c.db")
    try:
        store.migrate()
        world.populate(store)
        with pytest.raises(EvidenceError, match="unknown information system") as caught:
            export_bundle(
                store,
                "nope",
                world.START,
                world.END,
                tmp_path / "b.tar",
                config=world.config(tmp_path),
                key=Ed25519PrivateKey.generate(),
                regimes=world.REGIMES,
                now=lambda: NOW,
            )
        assert caught.value.location == "--system nope"
        assert not (tmp_path / "b.tar").exists()
        assert store.last_audit_record() is None
    finally:
        store.close()
