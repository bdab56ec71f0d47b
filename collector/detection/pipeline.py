"""The pySigma processing pipeline that puts Sigma rules onto Canh Gác's field vocabulary.

Three jobs, each a ProcessingItem:

* Reject rules for products we do not observe (a `product: windows` rule cannot match a Linux
  agent's events, and its field names would only produce confusing "unknown field" errors).
* Turn a log source into conditions on our events: `product: linux, service: sshd` becomes
  `event.category: authentication`, `category: process_creation` becomes
  `event.category: process, event.type: start` ... (LOGSOURCE_CONDITIONS).
* Rename Sigma taxonomy field names (`Image`, `CommandLine` ...) to dotted paths
  (SIGMA_FIELD_MAPPING). Names not in the table, such as our own `process.executable`, pass
  through unchanged. Keyword (field-less) detections become substring searches over
  KEYWORD_FIELDS, the raw record and the command line.

The event categories and types used here are ECS values; the agent's sources must emit the same
ones (authentication, process/start, network, file) for these log sources to match.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sigma.correlations import SigmaCorrelationRule
from sigma.processing.conditions import LogsourceCondition, RuleProcessingCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import (
    AddConditionTransformation,
    FieldMappingTransformation,
    RuleFailureTransformation,
)
from sigma.rule import SigmaRule

SUPPORTED_PRODUCTS: Final[frozenset[str]] = frozenset({"linux"})

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


@dataclass(frozen=True)
class LogsourceConditions:
    """Conditions on our events that stand for one Sigma log source."""

    product: str | None
    service: str | None
    category: str | None
    conditions: dict[str, str]


LOGSOURCE_CONDITIONS: Final[tuple[LogsourceConditions, ...]] = (
    LogsourceConditions("linux", "sshd", None, {"event.category": "authentication"}),
    LogsourceConditions("linux", "auth", None, {"event.category": "authentication"}),
    LogsourceConditions(
        "linux", None, "process_creation", {"event.category": "process", "event.type": "start"}
    ),
    LogsourceConditions("linux", None, "network_connection", {"event.category": "network"}),
    LogsourceConditions("linux", None, "file_event", {"event.category": "file"}),
)


@dataclass
class ForeignProductCondition(RuleProcessingCondition):
    """Matches base rules whose log source names a product we do not observe."""

    def match(self, rule: SigmaRule | SigmaCorrelationRule) -> bool:
        if not isinstance(rule, SigmaRule):
            return False
        product = rule.logsource.product
        return product is not None and product not in SUPPORTED_PRODUCTS


def canhgac_pipeline() -> ProcessingPipeline:
    """A fresh pipeline (pySigma items remember their pipeline, so never share one)."""
    items: list[ProcessingItem] = [
        ProcessingItem(
            RuleFailureTransformation(
                "log source product is not supported (supported: "
                + ", ".join(sorted(SUPPORTED_PRODUCTS))
                + ")"
            ),
            rule_conditions=[ForeignProductCondition()],
            identifier="canhgac_foreign_product",
        )
    ]
    for ls in LOGSOURCE_CONDITIONS:
        name = ls.service or ls.category or "any"
        items.append(
            ProcessingItem(
                AddConditionTransformation(dict(ls.conditions)),
                rule_conditions=[LogsourceCondition(ls.category, ls.product, ls.service)],
                identifier=f"canhgac_logsource_{ls.product}_{name}",
            )
        )
    mapping: dict[str | None, str | list[str]] = {None: list(KEYWORD_FIELDS)}
    mapping.update(SIGMA_FIELD_MAPPING)
    items.append(
        ProcessingItem(FieldMappingTransformation(mapping), identifier="canhgac_field_names")
    )
    return ProcessingPipeline(items=items, name="canhgac")
