"""Network devices' logs (Cisco, FortiGate, Huawei, Juniper) received as syslog, as Sigma
`product: <vendor>` log sources, on LogRecord events of the agent's devicelog source
(agent/sources/devicelog).

Every mapping is tied to the device's vendor (`observer.vendor`, `observer.product` for
FortiGate), so a Cisco rule never meets a FortiGate record and no device rule meets a host's
own logs:
* `cisco / aaa`: Cisco's command accounting as it reaches syslog: IOS `PARSER-5-CFGLOG_LOGGEDCMD`
  (`archive / log config / notify syslog`) and ASA 111008, 111009, 111010. The public rules are
  keyword lists of commands (`show running-config`, `clear logging`); a keyword is searched in
  the command the record names (`canhgac.log.fields.command`), not in the user or host name
  around it.
* `cisco / bgp`, `cisco / ldp`, `huawei / bgp`, `juniper / bgp`: every record of the vendor's
  devices; the public rules search the raw record (event.original) for the message they name
  (`IP-TCP-3-BADAUTH`, `BGP_AUTH_FAILED`, `missing MD5 digest`).
* `fortigate / event`: FortiGate event logs (type="event"); a rule's field names are the
  log's own key names (`action`, `cfgpath`, `logdesc` ...), i.e. `canhgac.log.fields.<name>`.
A rule with a product and no service gets the vendor condition only.
"""

from __future__ import annotations

from typing import Final

from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem
from sigma.processing.transformations import FieldFunctionTransformation, FieldMappingTransformation

from canhgac.fields import LOG_FIELD_PREFIX
from collector.detection.logsources.base import Conditions, LogsourceMapping

# Sigma `product:` values these log sources answer.
PRODUCTS: Final[frozenset[str]] = frozenset({"cisco", "fortigate", "huawei", "juniper"})

# The device records each product stands for (what agent/sources/devicelog writes).
VENDOR: Final[dict[str, Conditions]] = {
    "cisco": {"observer.vendor": "cisco"},
    "fortigate": {"observer.product": "fortigate"},
    "huawei": {"observer.vendor": "huawei"},
    "juniper": {"observer.vendor": "juniper"},
}

# Cisco command accounting records (agent/sources/devicelog/cisco.py COMMAND_RECORDS).
CISCO_COMMAND_RECORDS: Final[list[str]] = [
    "PARSER-5-CFGLOG_LOGGEDCMD",
    "ASA-5-111008",
    "ASA-7-111009",
    "ASA-5-111010",
]
CISCO_COMMAND_FIELD: Final = LOG_FIELD_PREFIX + "command"

LOGSOURCES: Final[tuple[LogsourceMapping, ...]] = (
    # A product alone: its vendor's records (these conditions also hold for every row below,
    # pySigma applies a product-only mapping to each rule of the product).
    *(LogsourceMapping(product, None, None, VENDOR[product]) for product in sorted(PRODUCTS)),
    LogsourceMapping(
        "cisco",
        "aaa",
        None,
        {"canhgac.log.format": "cisco", "canhgac.log.name": CISCO_COMMAND_RECORDS},
    ),
    LogsourceMapping("cisco", "bgp", None, {}),
    LogsourceMapping("cisco", "ldp", None, {}),
    LogsourceMapping("huawei", "bgp", None, {}),
    LogsourceMapping("juniper", "bgp", None, {}),
    LogsourceMapping(
        "fortigate",
        "event",
        None,
        {"canhgac.log.format": "fortigate", "canhgac.log.fields.type": "event"},
    ),
)


def fortigate_field(name: str | None) -> str:
    """A FortiGate key (`cfgpath`) as the record's own field; dotted names (ours) unchanged.
    (Never called for a keyword: the transformation leaves those to the keyword fields.)"""
    if name is None or "." in name:
        return name or ""
    return LOG_FIELD_PREFIX + name


def processing_items() -> list[ProcessingItem]:
    """Transformations of their own these log sources need, applied before the field mapping."""
    return [
        # Cisco command accounting: a keyword is a command (see the module docstring).
        ProcessingItem(
            FieldMappingTransformation({None: CISCO_COMMAND_FIELD}),
            rule_conditions=[LogsourceCondition(product="cisco", service="aaa")],
            identifier="canhgac_devices_cisco_aaa_keywords",
        ),
        # FortiGate: every key=value pair is a field under its own name.
        ProcessingItem(
            FieldFunctionTransformation({}, fortigate_field),
            rule_conditions=[LogsourceCondition(product="fortigate")],
            identifier="canhgac_devices_fortigate_fields",
        ),
    ]
