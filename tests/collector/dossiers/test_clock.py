"""Legal clocks: working days, cadences, incident deadlines and the annual-report window."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.dossiers.clock import (
    VN_TZ,
    add_hours,
    add_months,
    add_working_days,
    annual_report_window,
    incident_deadlines,
    next_due,
)
from collector.dossiers.regime import Cadence, CalendarRangeError, load_regimes

REGIMES = load_regimes(Path(__file__).resolve().parents[3] / "rules" / "regimes")
NEW = REGIMES.select("vn-2026")
LEGACY = REGIMES.select("vn-legacy-2016")
CAL = NEW.calendar
UTC = dt.UTC


def vn(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=VN_TZ)


def test_the_zone_is_utc_plus_7_without_dst() -> None:
    assert str(VN_TZ) == "Asia/Ho_Chi_Minh"
    for month in range(1, 13):
        assert vn(2026, month, 15, 12).utcoffset() == dt.timedelta(hours=7)


def test_add_hours_converts_to_vietnam_time() -> None:
    due = add_hours(dt.datetime(2026, 8, 1, 20, 0, tzinfo=UTC), 24)
    assert due == vn(2026, 8, 3, 3, 0)
    assert due.tzinfo is VN_TZ


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        add_hours(dt.datetime(2026, 8, 1), 1)


def test_working_days_skip_weekends_tet_and_swaps() -> None:
    # Friday 13/02/2026 + 1 working day: the weekend and Tết 16-20/02 are skipped.
    assert add_working_days(vn(2026, 2, 13, 9), 1, CAL) == vn(2026, 2, 23, 9)
    # Friday 21/08/2026 + 1: Saturday 22/08 is a swapped working day.
    assert add_working_days(vn(2026, 8, 21, 9), 1, CAL) == vn(2026, 8, 22, 9)
    # ... and Monday 31/08, 01/09 and 02/09 are days off.
    assert add_working_days(vn(2026, 8, 28, 9), 1, CAL) == vn(2026, 9, 3, 9)
    assert add_working_days(vn(2026, 8, 28, 9), 0, CAL) == vn(2026, 8, 28, 9)
    with pytest.raises(ValueError, match=">= 0"):
        add_working_days(vn(2026, 8, 28, 9), -1, CAL)


def test_a_15_working_day_appraisal_from_a_friday() -> None:
    days = NEW.requirements(3).appraisal_working_days.value
    assert days == 15
    # 24/04/2026 (Fri): skips 27/04 (Hùng Kings, observed), 30/04 and 01/05.
    assert add_working_days(vn(2026, 4, 24, 10), days, CAL) == vn(2026, 5, 20, 10)


def test_working_days_past_the_holiday_table_are_refused() -> None:
    with pytest.raises(CalendarRangeError, match="2025-2028"):
        add_working_days(vn(2028, 12, 28, 9), 5, CAL)


@pytest.mark.parametrize(
    ("cadence", "expected"),
    [
        (Cadence.MONTHLY, vn(2027, 2, 28, 8)),
        (Cadence.QUARTERLY, vn(2027, 4, 30, 8)),
        (Cadence.SEMIANNUAL, vn(2027, 7, 31, 8)),
        (Cadence.YEARLY, vn(2028, 1, 31, 8)),
        (Cadence.PERIODIC, None),
        (Cadence.OWN_PROGRAMME, None),
        (Cadence.NOT_REQUIRED, None),
        (None, None),
    ],
)
def test_next_due(cadence: Cadence | None, expected: dt.datetime | None) -> None:
    assert next_due(vn(2027, 1, 31, 8), cadence) == expected


def test_next_due_uses_the_level_requirement() -> None:
    cadence = NEW.requirements(4).account_review.value
    assert next_due(vn(2026, 11, 30, 8), cadence) == vn(2027, 2, 28, 8)
    assert add_months(vn(2028, 2, 29, 0), 12) == vn(2029, 2, 28, 0)


def test_incident_deadlines_under_the_new_regime() -> None:
    detected = vn(2026, 9, 10, 14, 30)
    serious = incident_deadlines(detected, "serious", NEW)
    assert [(d.deadline.id, d.due) for d in serious] == [
        ("initial-notice-24h", vn(2026, 9, 11, 14, 30)),
        ("report-72h", vn(2026, 9, 13, 14, 30)),
    ]
    urgent = incident_deadlines(detected, "national_security_or_major_disruption", NEW)
    assert urgent[0].immediate
    assert urgent[0].due == detected
    with_pii = incident_deadlines(detected, "normal", NEW, personal_data_breach=True)
    assert [d.deadline.id for d in with_pii] == ["personal-data-breach-72h", "report-72h"]


def test_the_legacy_five_days_are_calendar_days() -> None:
    (due,) = incident_deadlines(vn(2026, 4, 29, 9), "normal", LEGACY)
    assert due.due == vn(2026, 5, 4, 9)


def test_annual_report_window() -> None:
    w = annual_report_window(2026, NEW)
    assert (w.period_start, w.period_end) == (vn(2025, 12, 15), vn(2026, 12, 15))
    assert w.unit_report_due == vn(2026, 12, 20)
    assert w.owner_report_due == vn(2026, 12, 25)
    assert w.national_security_self_check_due == vn(2026, 10, 1)
    assert annual_report_window(2025, LEGACY).national_security_self_check_due is None


# --- properties -------------------------------------------------------------------------------

STARTS = st.datetimes(
    min_value=dt.datetime(2025, 1, 1),
    max_value=dt.datetime(2027, 12, 31),
    timezones=st.sampled_from(
        [VN_TZ, UTC, ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")]
    ),
)
DAYS = st.integers(min_value=0, max_value=40)


@settings(max_examples=300, deadline=None)
@given(start=STARTS, n=st.integers(min_value=1, max_value=60))
def test_a_working_day_deadline_is_never_a_weekend_or_a_day_off(start: dt.datetime, n: int) -> None:
    due = add_working_days(start, n, CAL)
    day = due.date()
    assert day in CAL.working_weekend_days or (day.weekday() < 5 and day not in CAL.days_off)
    assert due.tzinfo is VN_TZ


@settings(max_examples=300, deadline=None)
@given(start=STARTS, n=DAYS, m=DAYS)
def test_working_days_add_up(start: dt.datetime, n: int, m: int) -> None:
    assert add_working_days(add_working_days(start, n, CAL), m, CAL) == add_working_days(
        start, n + m, CAL
    )


@settings(max_examples=300, deadline=None)
@given(a=STARTS, b=STARTS, n=DAYS, hours=st.integers(0, 200))
def test_deadlines_are_monotonic_in_the_start(
    a: dt.datetime, b: dt.datetime, n: int, hours: int
) -> None:
    early, late = sorted((a, b))
    assert add_working_days(early, n, CAL) <= add_working_days(late, n, CAL)
    assert add_hours(early, hours) <= add_hours(late, hours)
    for severity in ("normal", "serious", "national_security_or_major_disruption"):
        e = incident_deadlines(early, severity, NEW)
        lt = incident_deadlines(late, severity, NEW)
        assert all(x.due <= y.due for x, y in zip(e, lt, strict=True))


@settings(max_examples=200, deadline=None)
@given(start=STARTS, n=DAYS, hours=st.integers(0, 200))
def test_results_are_aware_in_vietnam_time_and_keep_the_instant(
    start: dt.datetime, n: int, hours: int
) -> None:
    for t in (add_hours(start, hours), add_working_days(start, n, CAL)):
        assert t.tzinfo is VN_TZ
        assert t.utcoffset() == dt.timedelta(hours=7)
    assert add_hours(start, hours) - start == dt.timedelta(hours=hours)
    due = next_due(start, Cadence.MONTHLY)
    assert due is not None
    assert due > start
    assert due.tzinfo is VN_TZ


def test_a_start_on_a_day_off_counts_from_the_next_working_day() -> None:
    friday_night = dt.datetime(2026, 2, 6, 23, 30, tzinfo=VN_TZ)
    saturday = dt.datetime(2026, 2, 7, 9, 0, tzinfo=VN_TZ)
    # Friday night: the same time on Monday. Saturday: the whole of Monday, so never less.
    assert add_working_days(friday_night, 1, CAL) == dt.datetime(2026, 2, 9, 23, 30, tzinfo=VN_TZ)
    assert add_working_days(saturday, 1, CAL) == dt.datetime(2026, 2, 10, 0, 0, tzinfo=VN_TZ)
