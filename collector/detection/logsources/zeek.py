"""Zeek's logs (http, smb_files, dce_rpc, kerberos, rdp, x509 ...) as Sigma `product: zeek`
log sources, on LogRecord events of format "zeek" (Zeek's dns.log is the dns mapping in
`collector.detection.pipeline`, on the network sensor's DNS events).

The agent's zeek source (agent/sources/zeek) emits one LogRecord per Zeek entry with
`canhgac.log.format: zeek`, `canhgac.log.name: <the log>` and the entry's columns under their
own names (`canhgac.log.fields.uri`, `canhgac.log.fields.id.orig_h`). Each service below is
mapped onto exactly those records, and its column names onto those fields. The columns are the
ones Zeek writes for the log (base scripts, plus a few widely deployed additions such as
ja3): a rule asking for a name the log never carries is refused as an unknown field rather
than loaded to never match. Lists (sets, vectors) are one text joined with ",", so use
`contains`/`endswith` on them. The addresses (`id.orig_h` ...) stay Zeek columns: these
records do not carry ECS source.ip/destination.ip.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from sigma.processing.pipeline import ProcessingItem

from canhgac.fields import LOG_FIELD_PREFIX
from collector.detection.logsources.base import LogsourceMapping

# Sigma `product:` values these log sources answer ("zeek" is already listed by the pipeline).
PRODUCTS: Final[frozenset[str]] = frozenset({"zeek"})

# The connection id every connection-based log starts with.
_CONNECTION: Final = ("ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p")

# Zeek's columns per log (the agent's default logs; dns and conn are not among them).
ZEEK_COLUMNS: Final[Mapping[str, tuple[str, ...]]] = {
    "http": (
        *_CONNECTION,
        "trans_depth",
        "method",
        "host",
        "uri",
        "referrer",
        "version",
        "user_agent",
        "origin",
        "request_body_len",
        "response_body_len",
        "status_code",
        "status_msg",
        "info_code",
        "info_msg",
        "tags",
        "username",
        "password",
        "proxied",
        "orig_fuids",
        "orig_filenames",
        "orig_mime_types",
        "resp_fuids",
        "resp_filenames",
        "resp_mime_types",
        "client_header_names",
        "server_header_names",
        "cookie_vars",
        "uri_vars",
    ),
    "smb_files": (
        *_CONNECTION,
        "fuid",
        "action",
        "path",
        "name",
        "size",
        "prev_name",
        "times.modified",
        "times.accessed",
        "times.created",
        "times.changed",
        "data_offset_req",
        "data_len_req",
        "data_len_rsp",
    ),
    "smb_mapping": (*_CONNECTION, "path", "service", "native_file_system", "share_type"),
    "dce_rpc": (*_CONNECTION, "rtt", "named_pipe", "endpoint", "operation"),
    "kerberos": (
        *_CONNECTION,
        "request_type",
        "client",
        "service",
        "success",
        "error_code",
        "error_msg",
        "from",
        "till",
        "cipher",
        "forwardable",
        "renewable",
        "client_cert_subject",
        "client_cert_fuid",
        "server_cert_subject",
        "server_cert_fuid",
    ),
    "rdp": (
        *_CONNECTION,
        "cookie",
        "result",
        "security_protocol",
        "client_channels",
        "keyboard_layout",
        "client_build",
        "client_name",
        "client_dig_product_id",
        "desktop_width",
        "desktop_height",
        "requested_color_depth",
        "cert_type",
        "cert_count",
        "cert_permanent",
        "encryption_level",
        "encryption_method",
    ),
    "x509": (
        "ts",
        "id",
        "fingerprint",
        "certificate.version",
        "certificate.serial",
        "certificate.subject",
        "certificate.issuer",
        "certificate.cn",
        "certificate.not_valid_before",
        "certificate.not_valid_after",
        "certificate.key_alg",
        "certificate.sig_alg",
        "certificate.key_type",
        "certificate.key_length",
        "certificate.exponent",
        "certificate.curve",
        "san.dns",
        "san.uri",
        "san.email",
        "san.ip",
        "basic_constraints.ca",
        "basic_constraints.path_len",
        "host_cert",
        "client_cert",
    ),
    "ssl": (
        *_CONNECTION,
        "version",
        "cipher",
        "curve",
        "server_name",
        "resumed",
        "last_alert",
        "next_protocol",
        "established",
        "ssl_history",
        "cert_chain_fps",
        "client_cert_chain_fps",
        "subject",
        "issuer",
        "client_subject",
        "client_issuer",
        "sni_matches_cert",
        "validation_status",
        "ja3",
        "ja3s",
    ),
}

# Web-server (W3C) names some public Zeek http rules use, for the Zeek column that holds the
# same thing. Only exact equivalents: cs-uri-query (the query alone) has none.
HTTP_ALIASES: Final[Mapping[str, str]] = {
    "c-uri": "uri",
    "cs-uri": "uri",
    "c-useragent": "user_agent",
    "cs-user-agent": "user_agent",
    "cs-method": "method",
    "cs-host": "host",
    "cs-referrer": "referrer",
    "sc-status": "status_code",
}


def field_mapping(log: str) -> dict[str, str]:
    """Sigma field name -> our path, for one Zeek log."""
    names = {name: LOG_FIELD_PREFIX + name for name in ZEEK_COLUMNS[log]}
    if log == "http":
        names.update({alias: LOG_FIELD_PREFIX + name for alias, name in HTTP_ALIASES.items()})
    return names


# event.action the agent's zeek source sets on each log's records (agent/sources/zeek/parser.py
# EVENT_KINDS; a test keeps the two equal). Besides format and name, the conditions ask for it
# because it is the longest literal of the three: the engine's index anchors a rule on its most
# selective literal, and "zeek" (every Zeek record) would win over "rdp" or "ssl".
ACTIONS: Final[Mapping[str, str]] = {
    "http": "http_request",
    "smb_files": "smb_file_access",
    "smb_mapping": "smb_share_mapping",
    "dce_rpc": "rpc_call",
    "kerberos": "kerberos_request",
    "rdp": "rdp_connection",
    "x509": "certificate_observed",
    "ssl": "tls_session",
}


def conditions(log: str) -> dict[str, str]:
    """What a Zeek record of `log` carries in its header, as emitted by the agent."""
    return {
        "event.category": "network",
        "event.action": ACTIONS[log],
        "canhgac.log.format": "zeek",
        "canhgac.log.name": log,
    }


LOGSOURCES: Final[tuple[LogsourceMapping, ...]] = tuple(
    LogsourceMapping("zeek", log, None, conditions(log), field_mapping(log)) for log in ZEEK_COLUMNS
)


def processing_items() -> list[ProcessingItem]:
    """Transformations of their own these log sources need, applied before the field mapping."""
    return []
