"""From a matched rule to an `alert_pb2.Alert`: severity, incident category, ATT&CK ids, text.

A rule's alert metadata is worked out once at load time (`AlertTemplate.from_sigma`):

* severity from Sigma `level` (a rule without one is `medium`);
* incident category from the custom attribute `canhgac.category` (one of the national
  categories, e.g. `unauthorized_access`), else from the ATT&CK tags (TECHNIQUE_CATEGORIES,
  then TACTIC_CATEGORIES), else `other`;
* ATT&CK technique ids from `attack.tNNNN[.NNN]` tags, upper-cased (`T1110.001`);
* the summary from the custom attribute `canhgac.summary`, a template whose `{placeholders}`
  are field paths (`{source.ip}`) or SUMMARY_VALUES (`{event_count}`, `{timespan}` ...).
  Placeholders are checked at load, so a typo disables the rule instead of printing braces.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from sigma.correlations import SigmaCorrelationRule
from sigma.rule import SigmaRule

from canhgac import fields as vocabulary
from canhgac.errors import RuleError
from canhgac.ids import new_id
from canhgac.v1 import alert_pb2, events_pb2
from collector.detection.correlation import WindowHit
from collector.detection.matchers import text
from collector.detection.ruleset import rule_id

SEVERITIES: Final[Mapping[str, alert_pb2.Severity.ValueType]] = {
    "informational": alert_pb2.SEVERITY_INFORMATIONAL,
    "low": alert_pb2.SEVERITY_LOW,
    "medium": alert_pb2.SEVERITY_MEDIUM,
    "high": alert_pb2.SEVERITY_HIGH,
    "critical": alert_pb2.SEVERITY_CRITICAL,
}
DEFAULT_LEVEL: Final = "medium"

# ATT&CK -> national incident category (Mẫu 05); techniques are more specific, so win.
TECHNIQUE_CATEGORIES: Final[Mapping[str, str]] = {
    "t1498": "denial_of_service",
    "t1499": "denial_of_service",
    "t1566": "spoofing",
    "t1486": "ransomware",
    "t1491": "defacement",
    "t1485": "destruction",
    "t1561": "destruction",
    "t1110": "unauthorized_access",
}
TACTIC_CATEGORIES: Final[Mapping[str, str]] = {
    "initial_access": "unauthorized_access",
    "credential_access": "unauthorized_access",
    "privilege_escalation": "unauthorized_access",
    "persistence": "unauthorized_access",
    "lateral_movement": "unauthorized_access",
    "defense_evasion": "unauthorized_access",
    "execution": "malware",
    "command_and_control": "malware",
    "collection": "data_theft",
    "exfiltration": "data_theft",
    "impact": "destruction",
}
DEFAULT_CATEGORY: Final = "other"

CATEGORY_ATTRIBUTE: Final = "canhgac.category"
SUMMARY_ATTRIBUTE: Final = "canhgac.summary"
SUMMARY_VALUES: Final[frozenset[str]] = frozenset(
    {"event_count", "timespan", "timespan_s", "rule_title", "host", "agent_id"}
)
_PLACEHOLDER: Final = re.compile(r"\{([A-Za-z0-9_.@]+)\}")
_TECHNIQUE: Final = re.compile(r"t\d{4}(\.\d{3})?")


@dataclass(frozen=True)
class AlertTemplate:
    """Everything about an alert that depends only on the rule."""

    rule_id: str
    title: str
    severity: alert_pb2.Severity.ValueType
    category: str
    techniques: tuple[str, ...]
    summary: str | None

    @classmethod
    def from_sigma(
        cls, rule: SigmaRule | SigmaCorrelationRule, *, fallback: AlertTemplate | None = None
    ) -> AlertTemplate:
        """Read a pySigma rule; `fallback` fills category and techniques the rule lacks."""
        level = rule.level.name.lower() if rule.level is not None else DEFAULT_LEVEL
        tags = [(str(t.namespace).lower(), str(t.name).lower()) for t in rule.tags]
        techniques = tuple(name.upper() for ns, name in tags if ns == "attack" and _is_tech(name))
        attributes = rule.custom_attributes or {}
        category = attributes.get(CATEGORY_ATTRIBUTE) or _category_from_tags(tags)
        if category is None:
            category = fallback.category if fallback is not None else DEFAULT_CATEGORY
        if not techniques and fallback is not None:
            techniques = fallback.techniques
        summary = attributes.get(SUMMARY_ATTRIBUTE)
        if summary is not None:
            _check_summary(summary)
        return cls(
            rule_id=rule_id(rule),
            title=str(rule.title),
            severity=SEVERITIES[level],
            category=str(category),
            techniques=techniques,
            summary=summary,
        )

    def event_alert(
        self, ev: events_pb2.Event, fields: Mapping[str, Any], now_ns: int
    ) -> alert_pb2.Alert:
        """The alert for one event that matched a stand-alone base rule."""
        values = {**fields, "event_count": 1, "rule_title": self.title}
        values.update(host=ev.host, agent_id=ev.agent_id)
        return self._alert(
            now_ns,
            first_ns=ev.time_ns,
            last_ns=ev.time_ns,
            agent_id=ev.agent_id,
            host=ev.host,
            group={},
            event_ids=[ev.id] if ev.id else [],
            count=1,
            summary=self._render(values, f"{self.title} on {ev.host or ev.agent_id}"),
        )

    def window_alert(self, hit: WindowHit, timespan_s: int, now_ns: int) -> alert_pb2.Alert:
        """The alert for a correlation group that met its condition."""
        span = human_span(timespan_s)
        values: dict[str, Any] = {**hit.group, "event_count": hit.count, "rule_title": self.title}
        values.update(host=hit.host, agent_id=hit.agent_id, timespan=span, timespan_s=timespan_s)
        pairs = ", ".join(f"{k}={v}" for k, v in hit.group.items())
        default = f"{self.title}: {hit.count} events within {span}" + (
            f" ({pairs})" if pairs else ""
        )
        return self._alert(
            now_ns,
            first_ns=hit.first_ns,
            last_ns=hit.last_ns,
            agent_id=hit.agent_id,
            host=hit.host,
            group=hit.group,
            event_ids=hit.event_ids,
            count=hit.count,
            summary=self._render(values, default),
        )

    def _alert(
        self,
        now_ns: int,
        *,
        first_ns: int,
        last_ns: int,
        agent_id: str,
        host: str,
        group: Mapping[str, str],
        event_ids: list[str],
        count: int,
        summary: str,
    ) -> alert_pb2.Alert:
        return alert_pb2.Alert(
            id=new_id(now_ns),
            rule_id=self.rule_id,
            rule_title=self.title,
            severity=self.severity,
            created_ns=now_ns,
            first_seen_ns=first_ns,
            last_seen_ns=last_ns,
            agent_id=agent_id,
            host=host,
            category=self.category,
            mitre_techniques=list(self.techniques),
            group=dict(group),
            event_ids=event_ids,
            summary=summary,
            event_count=count,
        )

    def _render(self, values: Mapping[str, Any], default: str) -> str:
        if self.summary is None:
            return default

        def value(match: re.Match[str]) -> str:
            v = values.get(match.group(1))
            if v is None:
                return "?"
            return ", ".join(v) if type(v) is list else text(v)

        return _PLACEHOLDER.sub(value, self.summary)


def human_span(seconds: int) -> str:
    """60 -> "60 s", 300 -> "5 min", 7200 -> "2 h" (whole units only, else seconds)."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds >= 300 and seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def _is_tech(name: str) -> bool:
    return _TECHNIQUE.fullmatch(name) is not None


def _category_from_tags(tags: list[tuple[str, str]]) -> str | None:
    attack = [name for ns, name in tags if ns == "attack"]
    for name in attack:
        category = TECHNIQUE_CATEGORIES.get(name.split(".")[0])
        if category is not None:
            return category
    for name in attack:
        category = TACTIC_CATEGORIES.get(name.replace("-", "_"))
        if category is not None:
            return category
    return None


def _check_summary(summary: object) -> None:
    if not isinstance(summary, str):
        raise RuleError(f"{SUMMARY_ATTRIBUTE} must be a string")
    for name in _PLACEHOLDER.findall(summary):
        if name not in SUMMARY_VALUES and not vocabulary.is_known_field(name):
            raise RuleError(f"unknown placeholder '{{{name}}}' in {SUMMARY_ATTRIBUTE}")
