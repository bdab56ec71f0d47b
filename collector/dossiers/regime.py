"""Legal regimes as data: the models of `rules/regimes/*.yml` and the `Regime` they load into.

A regime file holds everything that depends on the law in force (ARCHITECTURE decision 9):
per-level requirements, the level criteria, incident categories, severity classes and
deadlines, the annual-report dates, and a reference to the holiday calendar used for
working-day deadlines. Every value carries `source` and `confidence` (V read in the legal text,
S a secondary source, I an inference, which must say why in `note`); an unknown value is
`value: null` with confidence I. The models are frozen and reject unknown keys; a bad value is
reported as `file: levels.3.log_review.value: ...`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Final, Generic, Literal, Self, TypeVar, get_args

from pydantic import Field, StringConstraints, model_validator

from canhgac.config import StrictModel, load_config
from canhgac.errors import ConfigError

T = TypeVar("T")

Confidence = Literal["V", "S", "I"]
SystemType = Literal[
    "internal", "citizen_business_service", "infrastructure", "industrial_control", "other"
]
InfoClass = Literal["public", "private", "personal_basic", "personal_sensitive", "state_secret"]
Severity = Literal["normal", "serious", "national_security_or_major_disruption"]
DeadlineKind = Literal[
    "immediate_notice", "initial_notice", "report", "personal_data_breach_notice"
]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
MonthDay = Annotated[str, StringConstraints(pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")]

InfrastructureReach = Literal[
    "none", "one_agency", "ministry_or_province", "national", "international"
]
NationalSecurityImpact = Literal["none", "harm", "serious_harm", "strategic"]
IndustrialControlWorks = Literal["none", "grade_ii_iv", "grade_i", "special_or_national_security"]
# Ordered vocabularies (lowest first): a criterion's `at_least` compares positions in them.
INFRASTRUCTURE_REACH: Final[tuple[InfrastructureReach, ...]] = get_args(InfrastructureReach)
NATIONAL_SECURITY_IMPACT: Final[tuple[NationalSecurityImpact, ...]] = get_args(
    NationalSecurityImpact
)
INDUSTRIAL_CONTROL_WORKS: Final[tuple[IndustrialControlWorks, ...]] = get_args(
    IndustrialControlWorks
)
WEEKDAYS: Final[tuple[Weekday, ...]] = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)
LEVELS: Final = (1, 2, 3, 4, 5)


class Cadence(StrEnum):
    """How often an activity is due. `periodic` and `own_programme` have no fixed interval."""

    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    SEMIANNUAL = "6-monthly"
    YEARLY = "yearly"
    PERIODIC = "periodic"  # the text requires it, with no interval
    OWN_PROGRAMME = "own_programme"  # the owner sets the interval
    NOT_REQUIRED = "none"


class Sourced(StrictModel):
    """Where a value comes from. An inference (confidence I) must explain itself in `note`."""

    source: str = Field(min_length=1)
    confidence: Confidence
    note: str | None = None

    @model_validator(mode="after")
    def _inference_needs_note(self) -> Self:
        if self.confidence == "I" and not self.note:
            raise ValueError("confidence I (inference) needs a note saying why")
        return self


class Value(Sourced, Generic[T]):
    """One sourced value; `None` means unknown and must be marked as an inference."""

    value: T

    @model_validator(mode="after")
    def _unknown_is_inference(self) -> Self:
        if self.value is None and self.confidence != "I":
            raise ValueError("an unknown value (null) must have confidence I and a note")
        return self


class EndDate(Sourced):
    """When a regime stops applying (first day no longer in force); `None`: no end date."""

    value: dt.date | None


class Bilingual(StrictModel):
    vi: str = Field(min_length=1)
    en: str = Field(min_length=1)


class Document(Sourced):
    number: str = Field(min_length=1)
    date: dt.date | None
    title: Bilingual


class LevelRequirements(StrictModel):
    """What one security level requires (DOMAIN §1.5, §1.6, §2, §6.2)."""

    log_retention_months: Value[int | None]
    log_review: Value[Cadence | None]
    account_review: Value[Cadence | None]
    vulnerability_scan: Value[Cadence | None]
    vulnerability_scan_key_assets: Value[Cadence | None]
    penetration_test: Value[Cadence | None]
    restore_test: Value[Cadence | None]
    assessment: Value[Cadence | None]
    central_monitoring: Value[bool | None]
    monitoring_24x7: Value[bool | None]
    network_zones: Value[tuple[str, ...] | None]
    cloud_isolation: Value[Literal["none", "logical", "physical"] | None]
    external_assessor_required: Value[bool | None]
    appraisal_body: Value[Literal["own_unit", "owner", "bca", "mic"] | None]
    approval_body: Value[Literal["own_unit", "owner", "prime_minister"] | None]
    appraisal_working_days: Value[int | None]
    approval_working_days: Value[int | None]


class CountBound(StrictModel):
    """A threshold on a count: exactly one of `at_least` and `below`."""

    at_least: int | None = Field(default=None, ge=0)
    below: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.at_least is None) == (self.below is None):
            raise ValueError("give exactly one of at_least and below")
        return self


class AtLeast(StrictModel, Generic[T]):
    at_least: T


class Conditions(StrictModel):
    """Conditions on a system's attributes; all the given ones must hold (see levels.py)."""

    system_type: frozenset[SystemType] | None = None
    info_classes_only: frozenset[InfoClass] | None = None
    info_classes_any: frozenset[InfoClass] | None = None
    info_classes_none: frozenset[InfoClass] | None = None
    handles_administrative_procedures: bool | None = None
    conditional_business_line: bool | None = None
    requires_24x7: bool | None = None
    national_egovernment: bool | None = None
    central_national_data_store: bool | None = None
    basic_data_subjects: CountBound | None = None
    sensitive_data_subjects: CountBound | None = None
    data_subjects: CountBound | None = None  # basic + sensitive
    infrastructure_reach: AtLeast[InfrastructureReach] | None = None
    national_security_impact: AtLeast[NationalSecurityImpact] | None = None
    industrial_control_works: AtLeast[IndustrialControlWorks] | None = None
    designated_level: AtLeast[Annotated[int, Field(ge=1, le=5)]] | None = None
    online_public_service_level: AtLeast[Annotated[int, Field(ge=1, le=4)]] | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("a criterion needs at least one condition")
        return self


class LevelCriterion(Sourced):
    """If every condition in `when` holds, the system is at least `level` (per `article`)."""

    id: str = Field(min_length=1)
    level: int = Field(ge=1, le=5)
    article: str = Field(min_length=1)
    when: Conditions
    description: Bilingual


class IncidentCategory(Sourced):
    id: str = Field(min_length=1)
    name: Bilingual


class SeverityClass(Sourced):
    id: Severity
    name: Bilingual


class Duration(StrictModel):
    unit: Literal["immediate", "hours", "days", "working_days"]
    amount: int = Field(ge=0)


class IncidentDeadline(Sourced):
    """A reporting duty that starts at detection for the listed severity classes."""

    id: str = Field(min_length=1)
    kind: DeadlineKind
    severities: frozenset[Severity] = Field(min_length=1)
    personal_data_only: bool = False
    after: Duration
    recipient: str = Field(min_length=1)


class Incidents(StrictModel):
    categories: tuple[IncidentCategory, ...] = Field(min_length=1)
    severities: tuple[SeverityClass, ...] = Field(min_length=1)
    deadlines: tuple[IncidentDeadline, ...]

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _unique("categories", [c.id for c in self.categories])
        _unique("severities", [s.id for s in self.severities])
        _unique("deadlines", [d.id for d in self.deadlines])
        declared = {s.id for s in self.severities}
        for d in self.deadlines:
            if missing := d.severities - declared:
                raise ValueError(f"deadline {d.id!r} names undeclared severities {sorted(missing)}")
        return self


class AnnualReport(StrictModel):
    period_start: Value[MonthDay]  # of the previous year
    period_end: Value[MonthDay]  # inclusive
    unit_report_before: Value[MonthDay]
    owner_report_before: Value[MonthDay]
    form: Value[str | None]
    recipient: Value[str | None]
    national_security_self_check_before: Value[MonthDay | None]


class ReportForm(Sourced):
    """A report document the regime prescribes: which form, and the fields it cannot leave
    empty (keys of the report labels, collector/dossiers/report_labels.py)."""

    name: Bilingual
    mandatory_fields: tuple[str, ...] = ()


ReportKind = Literal["initial", "closure", "annual"]


class RegimeSpec(StrictModel):
    """The contents of one regime file."""

    schema_version: Literal[1]
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: Bilingual
    in_force_from: Value[dt.date | None]
    in_force_until: EndDate
    calendar: str = Field(min_length=1)  # path relative to the regime file
    documents: tuple[Document, ...] = Field(min_length=1)
    levels: dict[Annotated[int, Field(ge=1, le=5)], LevelRequirements]
    online_service_log_retention_months: Value[int | None]
    level_criteria: tuple[LevelCriterion, ...] = Field(min_length=1)
    incidents: Incidents
    annual_report: AnnualReport
    report_forms: dict[ReportKind, ReportForm]

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if set(self.report_forms) != set(get_args(ReportKind)):
            raise ValueError(f"report_forms must define {', '.join(get_args(ReportKind))}")
        if sorted(self.levels) != list(LEVELS):
            raise ValueError(f"levels must define exactly 1-5, got {sorted(self.levels)}")
        _unique("level_criteria", [c.id for c in self.level_criteria])
        return self


class CalendarDay(Sourced):
    date: dt.date
    name: Bilingual


class CalendarCoverage(Sourced):
    from_year: int
    until_year: int


class CalendarSpec(StrictModel):
    """A holiday table (`rules/regimes/calendars/*.yml`): non-working days, updated yearly."""

    id: str = Field(min_length=1)
    title: Bilingual
    covers: CalendarCoverage
    weekend: Value[frozenset[Weekday]]
    days_off: tuple[CalendarDay, ...]
    working_weekend_days: tuple[CalendarDay, ...] = ()

    @model_validator(mode="after")
    def _inside_coverage(self) -> Self:
        for day in (*self.days_off, *self.working_weekend_days):
            if not self.covers.from_year <= day.date.year <= self.covers.until_year:
                raise ValueError(
                    f"{day.date} is outside covers {self.covers.from_year}-{self.covers.until_year}"
                )
        _unique("days_off", [d.date for d in self.days_off])
        return self


def _unique(what: str, keys: list[object]) -> None:
    seen: set[object] = set()
    for key in keys:
        if key in seen:
            raise ValueError(f"duplicate {what} entry {key!s}")
        seen.add(key)


class CalendarRangeError(ConfigError):
    """A working-day computation reached a year the holiday table does not cover."""


@dataclass(frozen=True)
class WorkCalendar:
    """Working days of state agencies: not a weekend day, not a day off, or a swapped Saturday."""

    days_off: frozenset[dt.date]
    working_weekend_days: frozenset[dt.date]
    weekend: frozenset[int]  # date.weekday() numbers
    first_year: int
    last_year: int
    source: str = "<calendar>"

    @classmethod
    def from_spec(cls, spec: CalendarSpec, *, source: str) -> WorkCalendar:
        return cls(
            days_off=frozenset(d.date for d in spec.days_off),
            working_weekend_days=frozenset(d.date for d in spec.working_weekend_days),
            weekend=frozenset(WEEKDAYS.index(w) for w in spec.weekend.value),
            first_year=spec.covers.from_year,
            last_year=spec.covers.until_year,
            source=source,
        )

    def is_working_day(self, day: dt.date) -> bool:
        if not self.first_year <= day.year <= self.last_year:
            raise CalendarRangeError(
                f"{day} is outside the holiday table ({self.first_year}-{self.last_year}); "
                "add the year's holidays",
                location=self.source,
            )
        if day in self.working_weekend_days:
            return True
        return day.weekday() not in self.weekend and day not in self.days_off


@dataclass(frozen=True)
class Regime:
    """A loaded legal regime: its data plus the holiday calendar it counts working days with."""

    spec: RegimeSpec
    calendar: WorkCalendar
    path: Path = field(default=Path("<regime>"))

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def title(self) -> Bilingual:
        return self.spec.title

    def requirements(self, level: int) -> LevelRequirements:
        if level not in LEVELS:
            raise ValueError(f"security level must be 1-5, got {level}")
        return self.spec.levels[level]

    @property
    def level_criteria(self) -> tuple[LevelCriterion, ...]:
        return self.spec.level_criteria

    @property
    def categories(self) -> tuple[IncidentCategory, ...]:
        return self.spec.incidents.categories

    def category(self, category_id: str) -> IncidentCategory:
        for c in self.categories:
            if c.id == category_id:
                return c
        raise KeyError(category_id)

    @property
    def severities(self) -> tuple[SeverityClass, ...]:
        return self.spec.incidents.severities

    def deadlines(
        self, severity: Severity, *, personal_data_breach: bool = False
    ) -> tuple[IncidentDeadline, ...]:
        """The reporting duties an incident of `severity` starts, in file order."""
        return tuple(
            d
            for d in self.spec.incidents.deadlines
            if severity in d.severities and (personal_data_breach or not d.personal_data_only)
        )

    def deadline(self, severity: Severity, kind: DeadlineKind) -> IncidentDeadline | None:
        """The duty of `kind` for `severity` (personal-data duties included), or None."""
        for d in self.deadlines(severity, personal_data_breach=True):
            if d.kind == kind:
                return d
        return None

    @property
    def annual_report(self) -> AnnualReport:
        return self.spec.annual_report

    def in_force_on(self, day: dt.date) -> bool:
        start, end = self.spec.in_force_from.value, self.spec.in_force_until.value
        return (start is None or start <= day) and (end is None or day < end)


def load_regime(path: str | Path) -> Regime:
    """Load one regime file and the calendar it names; ConfigError names the file and key path."""
    p = Path(path)
    spec = load_config(RegimeSpec, p)
    calendar_path = p.parent / spec.calendar
    calendar = load_config(CalendarSpec, calendar_path)
    return Regime(spec, WorkCalendar.from_spec(calendar, source=str(calendar_path)), p)


@dataclass(frozen=True)
class RegimeRegistry(Mapping[str, Regime]):
    """The regimes of a directory by id, and the files that failed to load (each on its own)."""

    regimes: Mapping[str, Regime]
    errors: tuple[ConfigError, ...] = ()

    def __getitem__(self, regime_id: str) -> Regime:
        return self.regimes[regime_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self.regimes)

    def __len__(self) -> int:
        return len(self.regimes)

    def select(self, regime_id: str) -> Regime:
        """The regime a deployment configured; ConfigError says what is available and why not."""
        if regime_id in self.regimes:
            return self.regimes[regime_id]
        detail = "; ".join(str(e) for e in self.errors)
        known = ", ".join(sorted(self.regimes)) or "none"
        message = f"unknown legal regime {regime_id!r} (loaded: {known})"
        raise ConfigError(
            message + (f"; failed: {detail}" if detail else ""), location="dossiers.regime"
        )


def load_regimes(directory: str | Path) -> RegimeRegistry:
    """Load every `*.yml` regime directly in `directory`; one bad file disables only itself."""
    regimes: dict[str, Regime] = {}
    errors: list[ConfigError] = []
    for path in sorted(Path(directory).glob("*.yml")):
        try:
            regime = load_regime(path)
        except ConfigError as exc:
            errors.append(exc)
            continue
        if regime.id in regimes:
            first = regimes[regime.id].path
            errors.append(
                ConfigError(
                    f"duplicate regime id {regime.id!r}, first in {first}", location=str(path)
                )
            )
            continue
        regimes[regime.id] = regime
    return RegimeRegistry(regimes, tuple(errors))


DEFAULT_REGIME: Final = "vn-2026"
