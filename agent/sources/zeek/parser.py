"""Turn Zeek log lines (JSON or TSV) into `Event`s with a `LogRecord` payload.

Both of Zeek's ASCII formats are read:

* JSON lines (`LogAscii::use_json=T`): one object per line. Nested objects are flattened with
  dots (`{"id": {"orig_h": ...}}` gives `id.orig_h`, as Zeek itself names the column), arrays
  (Zeek sets and vectors) are joined with "," (an element that itself holds a "," is not told
  apart), booleans become "true"/"false", null members are left out. Members whose name starts
  with "_" (`_path`, `_write_ts`, `_node`, added by some writers) are metadata, not columns:
  `_path` names the log, `_node` the sensor.
* TSV with Zeek's header block (`#separator \\x09`, `#set_separator`, `#empty_field`,
  `#unset_field`, `#path`, `#fields`, `#types`; `#open`/`#close` are ignored). A header line
  may come at any point of the file (Zeek writes a new block when it reopens a log) and
  replaces the previous one. Unset (`-`) and empty (`(empty)`) values are left out, `bool`
  columns become "true"/"false", set and vector columns keep Zeek's set separator
  (normally ","), and `\\xHH` escapes are decoded.

Every record keeps the line as `Event.original` and its columns under their own names in
`LogRecord.fields`. A line that yields no event is reported with a bounded reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from agent.sources.base import Skipped
from canhgac.ids import new_id
from canhgac.v1 import events_pb2

SOURCE_ID: Final = "zeek"
FORMAT: Final = "zeek"
LIST_SEPARATOR: Final = ","

# ECS header per log: event.type and event.action (event.category is always "network").
# conn is "info", not "connection": its records carry no source.ip/destination.ip, so Sigma's
# network_connection rules must not run on them.
EVENT_KINDS: Final[Mapping[str, tuple[str, str]]] = {
    "http": ("protocol", "http_request"),
    "smb_files": ("protocol", "smb_file_access"),
    "smb_mapping": ("protocol", "smb_share_mapping"),
    "dce_rpc": ("protocol", "rpc_call"),
    "kerberos": ("protocol", "kerberos_request"),
    "ntlm": ("protocol", "ntlm_authentication"),
    "rdp": ("protocol", "rdp_connection"),
    "ssl": ("protocol", "tls_session"),
    "ssh": ("protocol", "ssh_session"),
    "dns": ("protocol", "dns_query"),
    "x509": ("info", "certificate_observed"),
    "files": ("info", "file_observed"),
    "conn": ("info", "connection_observed"),
}
CATEGORY: Final = "network"

_HEX_ESCAPE: Final = re.compile(r"\\x([0-9a-fA-F]{2})")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


# Skipped reasons of this parser: `empty_line`, `bad_json`, `json_not_object`, `no_tsv_header`
# (a data line before any `#fields`), `bad_tsv_header`, `column_count` (not as many values as
# `#fields` names), `bad_timestamp`.


@dataclass
class TsvHeader:
    """The TSV header block in force; serialisable, so a checkpoint can carry it."""

    separator: str = "\t"
    set_separator: str = ","
    empty_field: str = "(empty)"
    unset_field: str = "-"
    path: str = ""
    fields: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "separator": self.separator,
            "set_separator": self.set_separator,
            "empty_field": self.empty_field,
            "unset_field": self.unset_field,
            "path": self.path,
            "fields": list(self.fields),
            "types": list(self.types),
        }

    @classmethod
    def from_dict(cls, data: object) -> TsvHeader:
        """Raises ValueError when `data` is not what to_dict wrote."""
        if not isinstance(data, dict):
            raise ValueError("header is not an object")
        try:
            header = cls(
                separator=_text(data["separator"]),
                set_separator=_text(data["set_separator"]),
                empty_field=_text(data["empty_field"]),
                unset_field=_text(data["unset_field"]),
                path=_text(data["path"]),
                fields=[_text(f) for f in data["fields"]],
                types=[_text(t) for t in data["types"]],
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"invalid header: {exc}") from None
        if not header.separator:
            raise ValueError("invalid header: empty separator")
        return header


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def unescape(value: str) -> str:
    """Zeek's ASCII escapes (`\\x09` ...) decoded; any other backslash is kept."""
    if "\\x" not in value:
        return value
    # Zeek escapes bytes, so a UTF-8 character outside ASCII comes as several escapes.
    out = bytearray()
    start = 0
    for match in _HEX_ESCAPE.finditer(value):
        out += value[start : match.start()].encode("utf-8")
        out.append(int(match.group(1), 16))
        start = match.end()
    out += value[start:].encode("utf-8")
    return out.decode("utf-8", errors="replace")


def parse_ts(value: str) -> int:
    """A Zeek timestamp (epoch seconds `1764547200.123456`, or ISO 8601 with
    `LogAscii::json_timestamps`) in Unix nanoseconds; ValueError when it is neither."""
    seconds, _, fraction = value.partition(".")
    if seconds.isdigit() and (not fraction or fraction.isdigit()):
        ns = int(seconds) * 1_000_000_000 + (int((fraction + "000000000")[:9]) if fraction else 0)
    else:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"not a Zeek timestamp: {value!r}") from None
        if parsed.tzinfo is None:
            raise ValueError(f"timestamp without a zone: {value!r}")
        delta = parsed - _EPOCH
        ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    if not 0 <= ns < 2**63:  # Event.time_ns is an int64 of nanoseconds since 1970
        raise ValueError(f"timestamp out of range: {value!r}")
    return ns


def _scalar(value: object) -> str | None:
    if isinstance(value, str):
        return value
    kind = type(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        return repr(value)
    if value is None:
        return None
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def flatten_json(
    obj: Mapping[str, Any], prefix: str = "", out: dict[str, str] | None = None
) -> dict[str, str]:
    """A JSON object's members as flat dotted names with string values (see module doc)."""
    result: dict[str, str] = {} if out is None else out
    for key, value in obj.items():
        name = prefix + key if prefix else key
        kind = type(value)
        if kind is str:
            result[name] = value
        elif kind is dict:
            flatten_json(value, name + ".", result)
        elif kind is list:
            parts = [s for s in (_scalar(v) for v in value) if s is not None]
            if parts:
                result[name] = LIST_SEPARATOR.join(parts)
        else:
            text = _scalar(value)
            if text is not None:
                result[name] = text
    return result


class ZeekLogParser:
    """Parse the lines of one Zeek log file, in order.

    `log` is the log's name from its file name (http for http.log); a record's own `_path`
    (JSON) or the `#path` header (TSV) takes precedence. The TSV header in force is `header`;
    the source saves it with its checkpoint and gives it back on restart.
    """

    def __init__(
        self,
        log: str,
        *,
        agent_id: str,
        host: str,
        clock_ns: Callable[[], int],
        header: TsvHeader | None = None,
        source_id: str = SOURCE_ID,
    ) -> None:
        self.log = log
        self.header = header
        self._agent_id = agent_id
        self._host = host
        self._clock_ns = clock_ns
        self._source_id = source_id

    def parse(self, line: str) -> events_pb2.Event | Skipped | None:
        """The event for one line, why there is none, or None for a header line."""
        stripped = line.rstrip("\r")
        if not stripped.strip():
            return Skipped("empty_line")
        if stripped.startswith("#"):
            return self._header_line(stripped)
        if stripped.lstrip().startswith(("{", "[")):
            return self._json_line(stripped)
        return self._tsv_line(stripped)

    # --- JSON ------------------------------------------------------------------------------

    def _json_line(self, line: str) -> events_pb2.Event | Skipped:
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            return Skipped("bad_json")
        if not isinstance(obj, dict):
            return Skipped("json_not_object")
        meta = {k: obj[k] for k in obj if k.startswith("_")}
        columns = flatten_json({k: v for k, v in obj.items() if k not in meta} if meta else obj)
        name = meta.get("_path")
        node = meta.get("_node")
        return self._event(
            line,
            name if isinstance(name, str) and name else self.log,
            columns,
            node if isinstance(node, str) else "",
        )

    # --- TSV -------------------------------------------------------------------------------

    def _header_line(self, line: str) -> Skipped | None:
        header = self.header or TsvHeader()
        if line.startswith("#separator"):
            value = unescape(line[len("#separator") :].strip(" "))
            if len(value) != 1:
                return Skipped("bad_tsv_header")
            # A new header block starts: what the previous one said no longer holds.
            self.header = TsvHeader(separator=value)
            return None
        directive, _, rest = line.partition(header.separator)
        if directive in ("#open", "#close"):
            return None
        values = rest.split(header.separator) if rest else []
        if directive == "#fields":
            if not values or any(not v for v in values) or len(set(values)) != len(values):
                return Skipped("bad_tsv_header")
            header.fields = values
            header.types = []
        elif directive == "#types":
            header.types = values
        elif directive in ("#set_separator", "#empty_field", "#unset_field", "#path"):
            if len(values) != 1:
                return Skipped("bad_tsv_header")
            value = unescape(values[0])
            if directive == "#set_separator":
                header.set_separator = value
            elif directive == "#empty_field":
                header.empty_field = value
            elif directive == "#unset_field":
                header.unset_field = value
            else:
                header.path = value
        else:
            return Skipped("bad_tsv_header")
        self.header = header
        return None

    def _tsv_line(self, line: str) -> events_pb2.Event | Skipped:
        header = self.header
        if header is None or not header.fields:
            return Skipped("no_tsv_header")
        values = line.split(header.separator)
        if len(values) != len(header.fields):
            return Skipped("column_count")
        types = header.types if len(header.types) == len(header.fields) else []
        columns: dict[str, str] = {}
        for i, (name, raw) in enumerate(zip(header.fields, values, strict=True)):
            if raw == header.unset_field or raw == header.empty_field or not raw:
                continue
            kind = types[i] if types else ""
            if kind == "bool":
                value = {"T": "true", "F": "false"}.get(raw, raw)
            elif kind.startswith(("set[", "vector[")) and header.set_separator != LIST_SEPARATOR:
                value = LIST_SEPARATOR.join(unescape(v) for v in raw.split(header.set_separator))
            else:
                value = unescape(raw)
            columns[name] = value
        return self._event(line, header.path or self.log, columns, "")

    # --- the event -------------------------------------------------------------------------

    def _event(
        self, line: str, name: str, columns: dict[str, str], node: str
    ) -> events_pb2.Event | Skipped:
        created = self._clock_ns()
        when = created
        if (ts := columns.get("ts")) is not None:
            try:
                when = parse_ts(ts)
            except ValueError:
                return Skipped("bad_timestamp")
        event_type, action = EVENT_KINDS.get(name, ("info", name))
        record = events_pb2.LogRecord(format=FORMAT, name=name, hostname=node, fields=columns)
        event = events_pb2.Event(
            id=new_id(when),
            time_ns=when,
            created_ns=created,
            agent_id=self._agent_id,
            host=self._host,
            category=CATEGORY,
            type=event_type,
            action=action,
            source=self._source_id,
            original=line,
            log=record,
        )
        if name == "kerberos" and (success := columns.get("success")) in ("true", "false"):
            event.outcome = (
                events_pb2.OUTCOME_SUCCESS if success == "true" else events_pb2.OUTCOME_FAILURE
            )
        return event
