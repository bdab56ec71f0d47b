"""Legal clocks: deadlines and cadences in Vietnam's time zone (Asia/Ho_Chi_Minh, UTC+7, no DST).

Every function takes timezone-aware datetimes (a naive one is refused: it would silently mean
the host's zone) and returns aware datetimes in Asia/Ho_Chi_Minh. Working days come from the
regime's holiday calendar; a date outside the calendar's years raises CalendarRangeError rather
than guess, so the yearly table update cannot be forgotten silently.
"""

from __future__ import annotations

import calendar as _calendar
import datetime as dt
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo

from collector.dossiers.regime import (
    Cadence,
    Duration,
    IncidentDeadline,
    Regime,
    Severity,
    WorkCalendar,
)

VN_TZ: Final = ZoneInfo("Asia/Ho_Chi_Minh")

CADENCE_MONTHS: Final[dict[Cadence, int]] = {
    Cadence.MONTHLY: 1,
    Cadence.QUARTERLY: 3,
    Cadence.SEMIANNUAL: 6,
    Cadence.YEARLY: 12,
}


def to_local(t: dt.datetime) -> dt.datetime:
    """`t` in Asia/Ho_Chi_Minh; naive datetimes are refused."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError("a timezone-aware datetime is required")
    return t.astimezone(VN_TZ)


def add_hours(start: dt.datetime, hours: float) -> dt.datetime:
    return to_local(start) + dt.timedelta(hours=hours)


def add_days(start: dt.datetime, days: int) -> dt.datetime:
    """Calendar days; the time of day is kept (the zone has no DST)."""
    return to_local(start) + dt.timedelta(days=days)


def add_working_days(start: dt.datetime, n: int, calendar: WorkCalendar) -> dt.datetime:
    """The same time of day on the n-th working day after `start`'s local date.

    A start on a day off counts from the beginning (00:00) of the next working day, so the whole
    of that day is the first working day: an incident found on Saturday night has until the end
    of Monday for one working day, never less time than one found on Friday night (the deadline
    grows with the start). n = 0 returns `start` unchanged. For n >= 1 the result is always a
    working day, and add_working_days(add_working_days(s, n), m) == add_working_days(s, n + m).
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    t = to_local(start)
    if n and not calendar.is_working_day(t.date()):
        day = t.date() + dt.timedelta(days=1)
        while not calendar.is_working_day(day):
            day += dt.timedelta(days=1)
        t = dt.datetime.combine(day, dt.time(), tzinfo=t.tzinfo)
    while n:
        t += dt.timedelta(days=1)
        if calendar.is_working_day(t.date()):
            n -= 1
    return t


def add_months(t: dt.datetime, months: int) -> dt.datetime:
    """Calendar months, clamping the day to the month's end (31/1 + 1 month = 28 or 29/2)."""
    t = to_local(t)
    index = t.month - 1 + months
    year, month = t.year + index // 12, index % 12 + 1
    day = min(t.day, _calendar.monthrange(year, month)[1])
    return t.replace(year=year, month=month, day=day)


def next_due(last_done: dt.datetime, cadence: Cadence | None) -> dt.datetime | None:
    """When an activity done at `last_done` is due again; None when the cadence has no interval
    (`periodic`, `own_programme`: the deployment sets one), is `none` or unknown."""
    if cadence is None or cadence not in CADENCE_MONTHS:
        return None
    return add_months(last_done, CADENCE_MONTHS[cadence])


def due_after(start: dt.datetime, after: Duration, calendar: WorkCalendar) -> dt.datetime:
    """`start` plus a legal duration (immediate, hours, calendar days or working days)."""
    match after.unit:
        case "immediate":
            return to_local(start)
        case "hours":
            return add_hours(start, after.amount)
        case "days":
            return add_days(start, after.amount)
        case "working_days":
            return add_working_days(start, after.amount, calendar)


@dataclass(frozen=True)
class IncidentDue:
    """One reporting duty of an incident and when it falls due (`immediate`: at once)."""

    deadline: IncidentDeadline
    due: dt.datetime

    @property
    def immediate(self) -> bool:
        return self.deadline.after.unit == "immediate"


def incident_deadlines(
    detected_at: dt.datetime,
    severity: Severity,
    regime: Regime,
    *,
    personal_data_breach: bool = False,
) -> tuple[IncidentDue, ...]:
    """The reporting duties an incident starts under `regime`, earliest first."""
    dues = (
        IncidentDue(d, due_after(detected_at, d.after, regime.calendar))
        for d in regime.deadlines(severity, personal_data_breach=personal_data_breach)
    )
    return tuple(sorted(dues, key=lambda d: (d.due, d.deadline.id)))


@dataclass(frozen=True)
class AnnualReportWindow:
    """The annual report of `year`: the period it covers [start, end) and its due times.

    A "before 20/12" deadline is represented as 20/12 00:00: the report must arrive earlier.
    """

    year: int
    period_start: dt.datetime
    period_end: dt.datetime
    unit_report_due: dt.datetime
    owner_report_due: dt.datetime
    national_security_self_check_due: dt.datetime | None


def annual_report_window(year: int, regime: Regime) -> AnnualReportWindow:
    report = regime.annual_report
    self_check = report.national_security_self_check_before.value
    return AnnualReportWindow(
        year=year,
        period_start=_midnight(year - 1, report.period_start.value),
        period_end=_midnight(year, report.period_end.value) + dt.timedelta(days=1),
        unit_report_due=_midnight(year, report.unit_report_before.value),
        owner_report_due=_midnight(year, report.owner_report_before.value),
        national_security_self_check_due=_midnight(year, self_check) if self_check else None,
    )


def _midnight(year: int, month_day: str) -> dt.datetime:
    month, day = (int(part) for part in month_day.split("-"))
    return dt.datetime(year, month, day, tzinfo=VN_TZ)
