"""The pySigma processing pipeline that puts Sigma rules onto Canh Gác's field vocabulary.

Its processing items, in order:

* Refuse a rule whose log source our events cannot answer (`product: windows`, a device log
  such as `product: cisco`, a Zeek log other than dns, a Linux service log the agent does not
  collect): a rule that could never match is reported with the reason, never run silently.
* Rewrite each detection of a `service: auditd` rule into the events that answer it
  (AuditdRecordTypeTransformation, below), and Sysmon's `Initiated` into `network.direction`.
* Turn each log source into conditions on our events (LOGSOURCES): `product: linux,
  service: sshd` becomes `event.category: authentication`, `category: process_creation`
  becomes `event.category: process, event.type: start` ...
* Rename field names (`Image`, `CommandLine`, auditd's `a0`, DNS `query` ...) to dotted paths,
  with a table per log source where the same name means different things (SIGMA_FIELD_MAPPING
  for all rules). Names not in a table, such as our own `process.executable`, pass through
  unchanged; the compiler refuses any that is not in the vocabulary. Keyword (field-less)
  detections become substring searches over KEYWORD_FIELDS.

The event categories and types used here are ECS values; the agent's sources must emit the same
ones (authentication, iam, process/start, network/connection, file) for these log sources to
match. Every mapping says what our events really carry; where they do not carry what a rule
asks (firewall verdicts, Zeek SMB logs ...) the rule is refused.

auditd. A `service: auditd` rule is answered by two kinds of events:

* the audit records themselves, from the agent's auditd source: LogRecord events of format
  "auditd" named by their record type (`canhgac.log.name: PATH`), each record field under
  `canhgac.log.fields.<name>` (`name`, `nametype`, `key`, SYSCALL's hex `a0` ... `a3`, the
  ENRICHED `SYSCALL` name, EXECVE's decoded argv `a0`, `a1` ...). Every record type and field
  is answered this way, on hosts that run auditd with rules that log them;
* on hosts without auditd, our typed events, for what they observe of a record type
  (AUDITD_TYPES): EXECVE is a process start (a0, a1 ... its argv, AUDITD_FIELD_MAPPING),
  SYSCALL the start of the program that made the call (only its identity: exe, comm),
  ADD_USER ... the auth-log's account events (no field).

So each detection of the rule becomes an OR of a record version (`canhgac.log.format: auditd`,
`type` as `canhgac.log.name`, every field as a record field) and, for each record type the
typed events answer with every field the detection asks, a typed version (`type` as
AUDITD_TYPES's conditions, fields through AUDITD_FIELD_MAPPING). A detection with no `type`
(`a1|startswith: ...` beside a typed selection, `key: ...`) gets the record version and, when
its fields allow, the typed one without conditions. The two versions need fields only their
own kind of event has, so the rule's condition (`selection and not filter`) combines them
per event exactly as the rule means. Keyword-only detections are left to KEYWORD_FIELDS.
Note SYSCALL's a0 ... are the call's arguments in hex and EXECVE's are argv: a SYSCALL
selection with a0 has no typed version.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final

from sigma.conditions import ConditionAND, ConditionOR
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaTransformationError
from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import (
    AddConditionTransformation,
    FieldMappingTransformation,
)
from sigma.processing.transformations.base import (
    DetectionItemTransformation,
    PreprocessingTransformation,
)
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaLogSource, SigmaRule
from sigma.types import SigmaBool, SigmaString, SigmaType

from canhgac.fields import ARGV_PATH_PREFIX, ARGV_POSITIONS, LOG_FIELD_PREFIX
from collector.detection.logsources import devices, syslog, zeek
from collector.detection.logsources.base import Conditions, LogsourceMapping

SUPPORTED_PRODUCTS: Final[frozenset[str]] = frozenset(
    {"linux", "zeek"} | syslog.PRODUCTS | devices.PRODUCTS | zeek.PRODUCTS
)

# Where a Sigma keyword search looks: the raw record, then the command line of process events.
KEYWORD_FIELDS: Final[tuple[str, ...]] = ("event.original", "process.command_line")

# Sigma taxonomy names (the Sysmon-derived ones SigmaHQ's Linux rules use) -> our paths.
SIGMA_FIELD_MAPPING: Final[dict[str, str]] = {
    "Image": "process.executable",
    "CommandLine": "process.command_line",
    "ParentImage": "process.parent.executable",
    "ParentCommandLine": "process.parent.command_line",
    "ProcessId": "process.pid",
    "ParentProcessId": "process.parent.pid",
    "User": "user.name",
    "CurrentDirectory": "process.working_directory",
    "DestinationIp": "destination.ip",
    "DestinationPort": "destination.port",
    "DestinationHostname": "destination.domain",
    "SourceIp": "source.ip",
    "SourcePort": "source.port",
    "Protocol": "network.transport",
    "TargetFilename": "file.path",
    "QueryName": "dns.question.name",
}

# auditd record fields our typed events answer. a0, a1 ... are argv positions of an EXECVE record.
AUDITD_FIELD_MAPPING: Final[dict[str, str]] = {
    "exe": "process.executable",
    "comm": "process.name",
    "cwd": "process.working_directory",
    **{f"a{i}": f"{ARGV_PATH_PREFIX}{i}" for i in range(ARGV_POSITIONS)},
}

# Sigma's dns taxonomy and Zeek's dns.log.
DNS_FIELD_MAPPING: Final[dict[str, str]] = {
    "query": "dns.question.name",
    "answer": "dns.answers.data",
    "answers": "dns.answers.data",
    "record_type": "dns.question.type",
    "qtype_name": "dns.question.type",
    "rcode_name": "dns.response_code",
    "id.orig_h": "source.ip",
    "id.orig_p": "source.port",
    "id.resp_h": "destination.ip",
    "id.resp_p": "destination.port",
}

# Sigma's firewall taxonomy: the addresses of the connection a firewall saw.
FIREWALL_FIELD_MAPPING: Final[dict[str, str]] = {
    "src_ip": "source.ip",
    "src_port": "source.port",
    "dst_ip": "destination.ip",
    "dst_port": "destination.port",
}


PROCESS_START: Final[Conditions] = {"event.category": "process", "event.type": "start"}
CONNECTION: Final[Conditions] = {"event.category": "network", "event.type": "connection"}
DNS_MESSAGE: Final[Conditions] = {"event.category": "network", "dns.type": ["query", "answer"]}


LOGSOURCES: Final[tuple[LogsourceMapping, ...]] = (
    LogsourceMapping("linux", "sshd", None, {"event.category": "authentication"}),
    LogsourceMapping("linux", "auth", None, {"event.category": "authentication"}),
    LogsourceMapping(
        "linux", "sudo", None, {"event.category": "authentication", "process.name": "sudo"}
    ),
    # auditd records name their kind in the detection (`type`): AuditdRecordTypeTransformation
    # adds the conditions and maps the field names of each detection itself.
    LogsourceMapping("linux", "auditd", None, {}),
    LogsourceMapping(None, None, "process_creation", PROCESS_START),
    LogsourceMapping(None, None, "network_connection", CONNECTION),
    # Sysmon's file_event is a file created or overwritten (a rename creates the new name).
    LogsourceMapping(
        None,
        None,
        "file_event",
        {"event.category": "file", "event.action": ["created", "modified", "renamed"]},
    ),
    LogsourceMapping(
        None, None, "file_delete", {"event.category": "file", "event.type": "deletion"}
    ),
    LogsourceMapping(None, None, "dns", DNS_MESSAGE, DNS_FIELD_MAPPING),
    LogsourceMapping("zeek", "dns", None, DNS_MESSAGE, DNS_FIELD_MAPPING),
    LogsourceMapping(None, None, "firewall", CONNECTION, FIREWALL_FIELD_MAPPING),
    *syslog.LOGSOURCES,
    *devices.LOGSOURCES,
    *zeek.LOGSOURCES,
)
# The name earlier versions exported.
LOGSOURCE_CONDITIONS: Final = LOGSOURCES

# auditd record type -> the conditions on our typed events that observe the same thing, on hosts
# without auditd (the records themselves answer every type, see the module docstring).
AUDITD_TYPES: Final[Mapping[str, Conditions]] = {
    "EXECVE": PROCESS_START,
    "SYSCALL": PROCESS_START,
    "ADD_USER": {"event.category": "iam", "event.action": "user_created"},
    "DEL_USER": {"event.category": "iam", "event.action": "user_deleted"},
    "ADD_GROUP": {"event.category": "iam", "event.action": "group_created"},
    "DEL_GROUP": {"event.category": "iam", "event.action": "group_deleted"},
}
_AUDITD_IDENTITY: Final = frozenset({"exe", "comm", "cwd"})
# The record fields each typed answer carries. SYSCALL: the program's start, never the call's
# name (`SYSCALL`, `syscall`), arguments (a0 ... in hex), result or audit `key`.
AUDITD_TYPED_FIELDS: Final[Mapping[str | None, frozenset[str]]] = {
    "EXECVE": frozenset(AUDITD_FIELD_MAPPING),
    "SYSCALL": _AUDITD_IDENTITY,
    None: frozenset(AUDITD_FIELD_MAPPING),  # a detection without `type`
}
AUDITD_FORMAT: Final = "auditd"
# auditd's own field names (lower case: `nametype`, `new-disk`, `a1[0]`) and the upper-case
# names of the ENRICHED format (`SYSCALL`, `AUID`); a rule asking another (`LogonId`) is refused.
_AUDITD_FIELD_NAME: Final = re.compile(r"[a-z0-9_\-\[\]]+|[A-Z0-9_]+")
AUDITD_RECORD_TYPE_FIELD: Final = "canhgac.log.name"

# Sysmon `Initiated`: true when the process opened the connection.
INITIATED_DIRECTIONS: Final[Mapping[str, str]] = {"true": "outbound", "false": "inbound"}


def unmapped_reason(logsource: SigmaLogSource) -> str | None:
    """Why no event of ours can answer `logsource`, None when one can."""
    product, service, category = logsource.product, logsource.service, logsource.category
    if product is not None and product not in SUPPORTED_PRODUCTS:
        supported = ", ".join(sorted(SUPPORTED_PRODUCTS))
        return f"log source product is not supported: {product} (supported: {supported})"
    if service is None and category is None:
        return None
    if any(ls.covers(logsource) for ls in LOGSOURCES):
        return None
    if product is None and service is None:
        return None  # a category of our own (`category: custom`): the detection says it all
    parts = [f"{k}={v}" for k, v in (("product", product), ("service", service)) if v]
    parts += [f"category={category}"] if category else []
    return "logsource not mapped: " + " ".join(parts)


@dataclass
class UnmappedLogsourceTransformation(PreprocessingTransformation):
    """Refuses a base rule whose log source no event of ours answers (unmapped_reason)."""

    def apply(self, rule: SigmaRule | SigmaCorrelationRule) -> None:
        super().apply(rule)
        if isinstance(rule, SigmaRule):
            reason = unmapped_reason(rule.logsource)
            if reason is not None:
                raise SigmaTransformationError(reason, source=rule.source)


def _conditions_detection(conditions: Conditions) -> SigmaDetection:
    items: list[SigmaDetectionItem | SigmaDetection] = []
    for name, value in conditions.items():
        values: list[SigmaType] = [
            SigmaString(v) for v in (value if isinstance(value, list) else [value])
        ]
        items.append(SigmaDetectionItem(name, [], values))
    return SigmaDetection(items)


def _leaf_items(detection: SigmaDetection) -> list[SigmaDetectionItem]:
    items: list[SigmaDetectionItem] = []
    for item in detection.detection_items:
        if isinstance(item, SigmaDetection):
            items.extend(_leaf_items(item))
        else:
            items.append(item)
    return items


def _copy_detection(
    detection: SigmaDetection,
    field: Mapping[str, str] | None,
    record_type: SigmaDetectionItem | SigmaDetection,
) -> SigmaDetection:
    """`detection` with `type` replaced by `record_type` and each field name mapped through
    `field` (None: as a record field). Values keep their modifiers, already applied."""
    items: list[SigmaDetectionItem | SigmaDetection] = []
    for item in detection.detection_items:
        if isinstance(item, SigmaDetection):
            items.append(_copy_detection(item, field, record_type))
        elif item.field == "type":
            items.append(record_type)
        elif item.field is None:  # a keyword: KEYWORD_FIELDS
            items.append(replace(item, auto_modifiers=False))
        elif field is None and not _AUDITD_FIELD_NAME.fullmatch(item.field):
            # Not an auditd field (`LogonId`): left for the compiler to refuse as unknown.
            items.append(replace(item, auto_modifiers=False))
        else:
            name = LOG_FIELD_PREFIX + item.field if field is None else field[item.field]
            items.append(replace(item, field=name, auto_modifiers=False))
    return SigmaDetection(items, item_linking=detection.item_linking)


def _values(values: list[str]) -> list[SigmaType]:
    return [SigmaString(v) for v in values]


@dataclass
class AuditdRecordTypeTransformation(PreprocessingTransformation):
    """Rewrites each detection of an auditd rule into an OR of the events that answer it: the
    auditd records themselves and, where they observe it, our typed events (module docstring).
    """

    def apply(self, rule: SigmaRule | SigmaCorrelationRule) -> None:
        super().apply(rule)
        if isinstance(rule, SigmaRule):
            for detection in rule.detection.detections.values():
                self._rewrite(detection)

    def _rewrite(self, detection: SigmaDetection) -> None:
        items = _leaf_items(detection)
        if all(i.field is None for i in items):
            return  # keywords only: searched in KEYWORD_FIELDS, which records carry too
        types: list[str] = []
        for item in items:
            if item.field == "type":
                if item.modifiers:
                    raise SigmaTransformationError(
                        "auditd record type with modifiers is unsupported", source=item.source
                    )
                types.extend(str(v).upper() for v in item.value)
        asked = {i.field for i in items if i.field is not None and i.field != "type"}
        name = SigmaDetectionItem(AUDITD_RECORD_TYPE_FIELD, [], _values(sorted(set(types))))
        alternatives: list[SigmaDetectionItem | SigmaDetection] = []
        records: list[str | None] = list(dict.fromkeys(types)) if types else [None]
        for record in records:
            answered = AUDITD_TYPED_FIELDS.get(record, frozenset())
            if (record is not None and record not in AUDITD_TYPES) or not asked <= answered:
                continue
            # (without `type` there is nothing to replace: `name` is never used)
            typed_type = name if record is None else _conditions_detection(AUDITD_TYPES[record])
            alternatives.append(_copy_detection(detection, AUDITD_FIELD_MAPPING, typed_type))
        record_version = _copy_detection(detection, None, name)
        fmt = SigmaDetectionItem("canhgac.log.format", [], _values([AUDITD_FORMAT]))
        alternatives.append(SigmaDetection([fmt, record_version], item_linking=ConditionAND))
        rewritten = (
            alternatives[0]
            if len(alternatives) == 1
            else SigmaDetection(alternatives, item_linking=ConditionOR)
        )
        detection.detection_items = [rewritten]
        detection.item_linking = ConditionAND


@dataclass
class InitiatedTransformation(DetectionItemTransformation):
    """Sysmon's `Initiated: true/false` as `network.direction: outbound/inbound`."""

    def apply_detection_item(self, detection_item: SigmaDetectionItem) -> SigmaDetectionItem | None:
        if detection_item.field != "Initiated":
            return None
        directions: list[SigmaType] = []
        for value in detection_item.value:
            key = (
                ("true" if value.boolean else "false")
                if isinstance(value, SigmaBool)
                else str(value).lower()
            )
            direction = INITIATED_DIRECTIONS.get(key)
            if direction is None or detection_item.modifiers:
                raise SigmaTransformationError(
                    f"Initiated must be true or false, not '{value}'", source=detection_item.source
                )
            directions.append(SigmaString(direction))
        return SigmaDetectionItem("network.direction", [], directions)


def canhgac_pipeline() -> ProcessingPipeline:
    """A fresh pipeline (pySigma items remember their pipeline, so never share one)."""
    auditd = LogsourceCondition(product="linux", service="auditd")
    items: list[ProcessingItem] = [
        ProcessingItem(UnmappedLogsourceTransformation(), identifier="canhgac_logsource_gate"),
        ProcessingItem(
            AuditdRecordTypeTransformation(),
            rule_conditions=[auditd],
            identifier="canhgac_auditd_record_type",
        ),
        ProcessingItem(InitiatedTransformation(), identifier="canhgac_initiated"),
        *syslog.processing_items(),
        *devices.processing_items(),
        *zeek.processing_items(),
    ]
    for ls in LOGSOURCES:
        condition = LogsourceCondition(ls.category, ls.product, ls.service)
        if ls.conditions:
            items.append(
                ProcessingItem(
                    AddConditionTransformation(dict(ls.conditions)),
                    rule_conditions=[condition],
                    identifier=f"canhgac_logsource_{ls.name}",
                )
            )
        if ls.fields:
            names: dict[str | None, str | list[str]] = dict(ls.fields.items())
            items.append(
                ProcessingItem(
                    FieldMappingTransformation(names),
                    rule_conditions=[LogsourceCondition(ls.category, ls.product, ls.service)],
                    identifier=f"canhgac_field_names_{ls.name}",
                )
            )
    mapping: dict[str | None, str | list[str]] = {None: list(KEYWORD_FIELDS)}
    mapping.update(SIGMA_FIELD_MAPPING)
    items.append(
        ProcessingItem(FieldMappingTransformation(mapping), identifier="canhgac_field_names")
    )
    return ProcessingPipeline(items=items, name="canhgac")
