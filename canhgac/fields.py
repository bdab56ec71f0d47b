"""The field vocabulary: typed events as flat Elastic-Common-Schema-style dotted paths.

This is the only module that knows how an `events_pb2.Event` maps onto the names rules, the
console and exports use (`process.executable`, `source.ip`, `event.outcome` ...). Everything
else asks `event_fields()` or checks a name with `is_known_field()`.

Naming rules:

* A path that ECS defines is used with the ECS meaning (`file.mode` is an octal string such
  as "0640", `network.iana_number` a string, `event.start`/`event.end` are Unix ns here).
* What ECS lacks lives under `canhgac.<kind>.*` (`canhgac.auth.method`,
  `canhgac.auth.user_invalid`, `canhgac.conn.*`), so a future ECS field never clashes with ours.
* The state before a file change is `file.original.*` (path before a rename, hash, mode, owner
  before a modification), so "old" values have one predictable prefix.
* Socket and flow addresses: `source` is the side that opened the connection, `destination`
  the side that accepted it. A listening socket's own address is `destination.*`, so
  `destination.port` is the service port for listen, inbound and outbound sockets alike.

Absent values: proto3 cannot tell an unset scalar from zero or an empty string, so a field is
emitted only when it is non-empty/non-zero, with two exceptions where zero means something:
`user.id`/`file.uid`/`file.gid` (root is 0) are emitted when the matching name is present, and
`process.exit_code` is emitted on process end events whose outcome is known. Booleans are
emitted only when true.

Speed: called once per event on the collector's hot path, so the per-kind work is a
precomputed table of (path, attrgetter) plus a small function for derived values; there is no
descriptor reflection per call.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from operator import attrgetter
from typing import Any, Final, TypeVar

from canhgac.v1 import events_pb2

FieldValue = str | int | float | bool | list[str]
Fields = dict[str, FieldValue]

_OUTCOMES: Final[Mapping[int, str]] = {
    events_pb2.OUTCOME_SUCCESS: "success",
    events_pb2.OUTCOME_FAILURE: "failure",
    events_pb2.OUTCOME_UNKNOWN: "unknown",
}

# Union of TCP flags as the flow sensor encodes them (events.proto FlowEvent.tcp_flags).
_TCP_FLAGS: Final[tuple[tuple[int, str], ...]] = (
    (1, "fin"),
    (2, "syn"),
    (4, "rst"),
    (8, "psh"),
    (16, "ack"),
    (32, "urg"),
    (64, "ece"),
    (128, "cwr"),
)
_PROBE_KINDS: Final[tuple[str, ...]] = ("syn", "fin", "null", "xmas", "ack")

# argv by position (`canhgac.process.argv.0` is argv[0]), for rules that name one argument, as
# auditd's EXECVE a0, a1 ... do. Only the first ARGV_POSITIONS are exposed; every one is in
# `process.args` too.
ARGV_PATH_PREFIX: Final = "canhgac.process.argv."
ARGV_POSITIONS: Final = 16
_ARGV_PATHS: Final[tuple[str, ...]] = tuple(f"{ARGV_PATH_PREFIX}{i}" for i in range(ARGV_POSITIONS))

# Straight copies: (dotted path, proto attribute). Emitted when the value is truthy.
_COPIES: Final[Mapping[str, tuple[tuple[str, str], ...]]] = {
    "process": (
        ("process.pid", "pid"),
        ("process.parent.pid", "ppid"),
        ("process.executable", "executable"),
        ("process.command_line", "command_line"),
        ("user.name", "user"),
        ("process.working_directory", "cwd"),
        ("process.parent.executable", "parent_executable"),
        ("process.parent.command_line", "parent_command_line"),
        ("process.start", "start_time_ns"),
        ("process.end", "end_time_ns"),
    ),
    "auth": (
        ("user.name", "user"),
        ("source.ip", "source_ip"),
        ("source.port", "source_port"),
        ("destination.ip", "destination_ip"),
        ("destination.port", "destination_port"),
        ("canhgac.auth.method", "method"),
        ("process.name", "process_name"),
        ("process.pid", "process_pid"),
        ("user.target.name", "target_user"),
        ("process.command_line", "command"),
        ("canhgac.auth.tty", "tty"),
        ("process.working_directory", "cwd"),
        ("event.reason", "reason"),
        ("group.name", "group"),
        ("user.id", "uid"),
        ("group.id", "gid"),
        ("canhgac.auth.repeat_count", "repeat_count"),
    ),
    "file": (
        ("file.path", "path"),
        ("file.original.path", "old_path"),
        ("file.hash.sha256", "sha256_new"),
        ("file.original.hash.sha256", "sha256_old"),
        ("file.size", "size"),
        ("file.mtime", "mtime_ns"),
        ("file.owner", "owner"),
        ("file.group", "group"),
        ("process.pid", "pid"),
        ("process.executable", "process_executable"),
    ),
    "socket": (
        ("network.transport", "transport"),
        ("network.direction", "direction"),
        ("canhgac.socket.state", "state"),
        ("process.pid", "pid"),
        ("process.executable", "process_executable"),
        ("process.name", "process_name"),
        ("user.name", "user"),
    ),
    "flow": (
        ("network.transport", "transport"),
        ("source.ip", "src_ip"),
        ("source.port", "src_port"),
        ("destination.ip", "dst_ip"),
        ("destination.port", "dst_port"),
        ("network.direction", "direction"),
        ("source.packets", "packets_to_server"),
        ("destination.packets", "packets_to_client"),
        ("source.bytes", "bytes_to_server"),
        ("destination.bytes", "bytes_to_client"),
        ("event.start", "first_seen_ns"),
        ("event.end", "last_seen_ns"),
        ("canhgac.flow.end_reason", "end_reason"),
        ("observer.ingress.interface.name", "interface"),
        ("destination.domain", "server_name"),
    ),
    "dns": (
        ("dns.question.name", "query_name"),
        ("dns.question.type", "query_type"),
        ("dns.response_code", "rcode"),
        ("canhgac.dns.question.length", "query_length"),
        ("source.ip", "client_ip"),
        ("source.port", "client_port"),
        ("destination.ip", "server_ip"),
        ("destination.port", "server_port"),
        ("network.transport", "transport"),
    ),
    "connection_attempts": (
        ("canhgac.conn.scope", "scope"),
        ("canhgac.conn.ip", "ip"),
        ("event.start", "window_start_ns"),
        ("event.end", "window_end_ns"),
        ("canhgac.conn.syn_without_handshake", "syn_without_handshake"),
        ("canhgac.conn.handshakes_completed", "handshakes_completed"),
        ("canhgac.conn.distinct_dst_ports", "distinct_dst_ports"),
        ("canhgac.conn.distinct_dst_hosts", "distinct_dst_hosts"),
        ("canhgac.conn.distinct_src_hosts", "distinct_src_hosts"),
        ("canhgac.conn.rst_replies", "rst_replies"),
        ("canhgac.conn.icmp_unreachable", "icmp_unreachable"),
        ("observer.ingress.interface.name", "interface"),
    ),
    "inventory": (
        ("host.hostname", "hostname"),
        ("host.os.name", "os_name"),
        ("host.os.version", "os_version"),
        ("host.os.kernel", "kernel"),
        ("host.architecture", "architecture"),
        ("canhgac.inventory.memory_bytes", "memory_bytes"),
        ("canhgac.inventory.cpu_count", "cpu_count"),
        ("host.boot.time", "boot_time_ns"),
    ),
    "log": (
        ("canhgac.log.format", "format"),
        ("canhgac.log.name", "name"),
        ("process.name", "program"),
        ("process.pid", "pid"),
        ("message", "message"),
        ("observer.hostname", "hostname"),
        ("log.syslog.facility.name", "facility"),
        ("log.syslog.severity.name", "severity"),
        ("observer.vendor", "vendor"),
        ("observer.product", "product"),
        ("observer.ip", "sender_ip"),
    ),
    "agent_status": (
        ("agent.version", "version"),
        ("canhgac.agent.rss_bytes", "rss_bytes"),
        ("canhgac.agent.cpu_percent", "cpu_percent"),
        ("canhgac.agent.spool_events", "spool_events"),
        ("canhgac.agent.spool_bytes", "spool_bytes"),
        ("canhgac.agent.events_total", "events_total"),
        ("canhgac.agent.started", "started_ns"),
    ),
}


def _process_args(ev: events_pb2.Event, p: Any, out: Fields) -> None:
    if p.args:
        args = list(p.args)
        out["process.args"] = args
        for path, arg in zip(_ARGV_PATHS, args, strict=False):
            if arg:
                out[path] = arg


def _process_name(ev: events_pb2.Event, p: Any, out: Fields) -> None:
    # Rules name programs far more often than paths; derive the name when the agent had none.
    # The executable was copied just before (reading the message again costs more), and
    # rpartition is posixpath.basename on a str at a fraction of the cost.
    name = p.name or _text_at(out, "process.executable").rpartition("/")[2]
    if name:
        out["process.name"] = name


def _process_parent_name(ev: events_pb2.Event, p: Any, out: Fields) -> None:
    parent = _text_at(out, "process.parent.executable")
    if parent:
        out["process.parent.name"] = parent.rpartition("/")[2]


def _text_at(out: Fields, path: str) -> str:
    value = out.get(path, "")
    return value if type(value) is str else ""


def _process_ids(ev: events_pb2.Event, p: Any, out: Fields) -> None:
    if p.user or p.uid:
        out["user.id"] = p.uid
    # An exit seen by polling /proc has no known code (outcome unknown): no field, not a 0.
    if (ev.type == "end" or p.end_time_ns) and ev.outcome != events_pb2.OUTCOME_UNKNOWN:
        out["process.exit_code"] = p.exit_code


def _process_extra(ev: events_pb2.Event, p: Any, out: Fields) -> None:
    _process_args(ev, p, out)
    _process_name(ev, p, out)
    _process_parent_name(ev, p, out)
    _process_ids(ev, p, out)


# A successful useradd or groupadd always logs the new account's id: there 0 is root's id.
_ID_ALWAYS_SET: Final = {
    "user_created": ("user.id", "user", "uid"),
    "group_created": ("group.id", "group", "gid"),
}


def _auth_extra(ev: events_pb2.Event, p: Any, out: Fields) -> None:
    if p.user_invalid:
        out["canhgac.auth.user_invalid"] = True
    always = _ID_ALWAYS_SET.get(ev.action)
    if always is not None and ev.outcome == events_pb2.OUTCOME_SUCCESS and getattr(p, always[1]):
        out[always[0]] = getattr(p, always[2])


def _file_extra(ev: events_pb2.Event, p: Any, out: Fields) -> None:
    if p.mode_new:
        out["file.mode"] = f"{p.mode_new & 0o7777:04o}"
    if p.mode_old:
        out["file.original.mode"] = f"{p.mode_old & 0o7777:04o}"
    if p.owner or p.uid_new:
        out["file.uid"] = p.uid_new
    if p.group or p.gid_new:
        out["file.gid"] = p.gid_new
    # A file that existed before the change always had a mode; only then is an old uid of 0 real.
    existed = bool(p.mode_old or p.sha256_old)
    if existed or p.uid_old:
        out["file.original.uid"] = p.uid_old
    if existed or p.gid_old:
        out["file.original.gid"] = p.gid_old


def _socket_extra(ev: events_pb2.Event, p: Any, out: Fields) -> None:
    if p.direction == "inbound":
        src = (p.remote_ip, p.remote_port)
        dst = (p.local_ip, p.local_port)
    elif p.direction == "listen":
        src, dst = ("", 0), (p.local_ip, p.local_port)
    else:
        src = (p.local_ip, p.local_port)
        dst = (p.remote_ip, p.remote_port)
    _put_endpoint(out, "source", src)
    _put_endpoint(out, "destination", dst)


def _put_endpoint(out: Fields, side: str, endpoint: tuple[str, int]) -> None:
    ip, port = endpoint
    if ip:
        out[side + ".ip"] = ip
    if port:
        out[side + ".port"] = port


def _flow_extra(ev: events_pb2.Event, p: Any, out: Fields) -> None:
    packets = p.packets_to_server + p.packets_to_client
    if packets:
        out["network.packets"] = packets
    octets = p.bytes_to_server + p.bytes_to_client
    if octets:
        out["network.bytes"] = octets
    flags = p.tcp_flags
    if flags:
        out["canhgac.flow.tcp_flags"] = [name for bit, name in _TCP_FLAGS if flags & bit]
    if p.ip_protocol:
        out["network.iana_number"] = str(p.ip_protocol)


def _dns_extra(ev: events_pb2.Event, p: Any, out: Fields) -> None:
    out["dns.type"] = "answer" if p.is_response else "query"
    if p.transaction_id:
        out["dns.id"] = str(p.transaction_id)
    answers = p.answers
    if answers:
        out["dns.answers.data"] = [a.data for a in answers]
        out["dns.answers.name"] = [a.name for a in answers]
        out["dns.answers.type"] = [a.type for a in answers]


def _conn_extra(ev: events_pb2.Event, p: Any, out: Fields) -> None:
    # Also expose the keyed address under ECS names so scan rules can group by source.ip.
    if p.ip and p.scope in ("source", "destination"):
        out[p.scope + ".ip"] = p.ip
    probes = p.probes_by_flags
    if probes:
        out["canhgac.conn.probe_flags"] = sorted(k for k, v in probes.items() if v)
        for kind in _PROBE_KINDS:
            count = probes.get(kind, 0)
            if count:
                out["canhgac.conn.probes." + kind] = count
    if p.sample_ports:
        out["canhgac.conn.sample_ports"] = [str(port) for port in p.sample_ports]


def _inventory_extra(ev: events_pb2.Event, p: Any, out: Fields) -> None:
    addresses = [a for iface in p.interfaces for a in iface.addresses]
    if addresses:
        out["host.ip"] = addresses
    macs = [iface.mac for iface in p.interfaces if iface.mac]
    if macs:
        out["host.mac"] = macs
    if p.packages:
        out["canhgac.inventory.package_count"] = len(p.packages)
    if p.users:
        out["canhgac.inventory.user_names"] = [u.name for u in p.users]


# A log record's own fields (LogRecord.fields), by their own names: `canhgac.log.fields.uri`.
LOG_FIELD_PREFIX: Final = "canhgac.log.fields."


def _log_extra(ev: events_pb2.Event, p: Any, out: Fields) -> None:
    if p.fields:
        for key, value in p.fields.items():
            if value:
                out[LOG_FIELD_PREFIX + key] = value


def _agent_status_extra(ev: events_pb2.Event, p: Any, out: Fields) -> None:
    drops = sum(d.count for d in p.drops)
    if drops:
        out["canhgac.agent.dropped_total"] = drops
    down = [s.source for s in p.sources if s.state in ("failed", "unavailable")]
    if down:
        out["canhgac.agent.sources_down"] = down


_Extra = Callable[[events_pb2.Event, Any, Fields], None]
_EXTRAS: Final[Mapping[str, _Extra]] = {
    "process": _process_extra,
    "auth": _auth_extra,
    "file": _file_extra,
    "socket": _socket_extra,
    "flow": _flow_extra,
    "dns": _dns_extra,
    "connection_attempts": _conn_extra,
    "inventory": _inventory_extra,
    "log": _log_extra,
    "agent_status": _agent_status_extra,
}

# Paths the derived-value functions above produce, per kind (kept next to the functions'
# output so FIELD_PATHS stays complete; a test checks every produced path is listed).
_DERIVED: Final[Mapping[str, tuple[str, ...]]] = {
    "process": (
        "process.args",
        "process.name",
        "process.parent.name",
        "user.id",
        "process.exit_code",
        *_ARGV_PATHS,
    ),
    "auth": ("canhgac.auth.user_invalid", "user.id", "group.id"),  # ids: a new account's 0
    "file": (
        "file.mode",
        "file.original.mode",
        "file.uid",
        "file.gid",
        "file.original.uid",
        "file.original.gid",
    ),
    "socket": ("source.ip", "source.port", "destination.ip", "destination.port"),
    "flow": ("network.packets", "network.bytes", "canhgac.flow.tcp_flags", "network.iana_number"),
    "dns": ("dns.type", "dns.id", "dns.answers.data", "dns.answers.name", "dns.answers.type"),
    "connection_attempts": (
        "source.ip",
        "destination.ip",
        "canhgac.conn.probe_flags",
        "canhgac.conn.sample_ports",
        *("canhgac.conn.probes." + kind for kind in _PROBE_KINDS),
    ),
    "inventory": (
        "host.ip",
        "host.mac",
        "canhgac.inventory.package_count",
        "canhgac.inventory.user_names",
    ),
    "log": (),  # its fields are dynamic: LOG_FIELD_PREFIX + the record's own names
    "agent_status": ("canhgac.agent.dropped_total", "canhgac.agent.sources_down"),
}

# The process kind's derived values in parts, each with the paths it produces and the copied
# paths it reads from the output, so that `fields_reader` computes only the parts a caller wants
# (argv is dear, and rarely read).
_Part = tuple[frozenset[str], _Extra, frozenset[str]]
_PROCESS_PARTS: Final[tuple[_Part, ...]] = (
    (frozenset({"process.args", *_ARGV_PATHS}), _process_args, frozenset()),
    (frozenset({"process.name"}), _process_name, frozenset({"process.executable"})),
    (
        frozenset({"process.parent.name"}),
        _process_parent_name,
        frozenset({"process.parent.executable"}),
    ),
    (frozenset({"user.id", "process.exit_code"}), _process_ids, frozenset()),
)
_PARTS: Final[Mapping[str, tuple[_Part, ...]]] = {
    kind: _PROCESS_PARTS
    if kind == "process"
    else ((frozenset(_DERIVED[kind]), extra, frozenset()),)
    for kind, extra in _EXTRAS.items()
}

HEADER_PATHS: Final[frozenset[str]] = frozenset(
    {
        "event.id",
        "@timestamp",
        "event.created",
        "agent.id",
        "host.name",
        "event.category",
        "event.type",
        "event.action",
        "event.outcome",
        "event.module",
        "event.original",
    }
)
LABEL_PREFIX: Final = "labels."

# Every path the module can produce, by payload kind (the console lists these per kind).
PAYLOAD_PATHS: Final[Mapping[str, frozenset[str]]] = {
    kind: frozenset(path for path, _ in copies) | frozenset(_DERIVED[kind])
    for kind, copies in _COPIES.items()
}
FIELD_PATHS: Final[frozenset[str]] = HEADER_PATHS.union(*PAYLOAD_PATHS.values())

# Folded syslog repetitions ("message repeated N times"): one event standing for N records.
REPEAT_COUNT_FIELD: Final = "canhgac.auth.repeat_count"

_GETTERS: Final[Mapping[str, tuple[tuple[str, Callable[[Any], Any]], ...]]] = {
    kind: tuple((path, attrgetter(attr)) for path, attr in copies)
    for kind, copies in _COPIES.items()
}


DYNAMIC_PREFIXES: Final[tuple[str, ...]] = (LABEL_PREFIX, LOG_FIELD_PREFIX)


def is_known_field(path: str) -> bool:
    """True if `path` is one the vocabulary can produce (`labels.<any>` and
    `canhgac.log.fields.<any>` included)."""
    if path in FIELD_PATHS:
        return True
    return any(path.startswith(prefix) and len(path) > len(prefix) for prefix in DYNAMIC_PREFIXES)


def event_fields(ev: events_pb2.Event) -> Fields:
    """The event as a flat dict of dotted paths; only set, non-empty values appear."""
    out: Fields = {}
    if ev.id:
        out["event.id"] = ev.id
    if ev.time_ns:
        out["@timestamp"] = ev.time_ns
    if ev.created_ns:
        out["event.created"] = ev.created_ns
    if ev.agent_id:
        out["agent.id"] = ev.agent_id
    if ev.host:
        out["host.name"] = ev.host
    if ev.category:
        out["event.category"] = ev.category
    if ev.type:
        out["event.type"] = ev.type
    if ev.action:
        out["event.action"] = ev.action
    outcome = _OUTCOMES.get(ev.outcome)
    if outcome is not None:
        out["event.outcome"] = outcome
    if ev.source:
        out["event.module"] = ev.source
    if ev.original:
        out["event.original"] = ev.original
    if ev.labels:
        for key, value in ev.labels.items():
            out[LABEL_PREFIX + key] = value
    kind = ev.WhichOneof("payload")
    if kind is None:
        return out
    payload = getattr(ev, kind)
    getters = _GETTERS.get(kind)
    if getters is None:  # a kind newer than this collector: keep the header only
        return out
    for path, get in getters:
        value = get(payload)
        if value:
            out[path] = value
    _EXTRAS[kind](ev, payload, out)
    return out


# The header paths that are straight copies of a truthy Event attribute.
_HEADER_COPIES: Final[tuple[tuple[str, str], ...]] = (
    ("event.id", "id"),
    ("@timestamp", "time_ns"),
    ("event.created", "created_ns"),
    ("agent.id", "agent_id"),
    ("host.name", "host"),
    ("event.category", "category"),
    ("event.type", "type"),
    ("event.action", "action"),
    ("event.module", "source"),
    ("event.original", "original"),
)
_OUTCOME_PATH: Final = "event.outcome"
# The header paths a reader fills from one attribute each, without touching the payload.
HEADER_COPY_PATHS: Final[frozenset[str]] = frozenset(path for path, _ in _HEADER_COPIES)

FieldsReader = Callable[[events_pb2.Event], Fields]
FieldsWriter = Callable[[events_pb2.Event, Fields], Fields]
T = TypeVar("T")


def fields_reader(wanted: Collection[str], first: Sequence[str] = ()) -> FieldsReader:
    """An `event_fields` that computes only (at least) the paths in `wanted`.

    The detection engine reads a handful of the fifty-odd paths an event has, so it asks for
    those alone: a header or payload attribute not wanted is never read from the message, and a
    kind's derived values are computed only when one of them is wanted (then all the paths of
    that part, see _PARTS, appear, so the result may hold more than `wanted`). Every path it
    returns has the value `event_fields` gives it, and every wanted path `event_fields` would
    return is there: a rule sees the same values either way. `first`: the payload kinds to test
    for first, in order (those the caller's events usually carry; any order gives the same
    result).
    """
    reader: FieldsReader = _compile_reader(*_plan(wanted, first))
    return reader


def fields_reader_then(
    wanted: Collection[str],
    then: Callable[[Callable[[str], bool]], Callable[[Fields], T]],
    first: Sequence[str] = (),
) -> Callable[[events_pb2.Event], tuple[Fields, T]]:
    """`fields_reader(wanted, first)` that also returns what a function of the fields says.

    `then(may_hold)` is called once per payload kind the reader tells apart (and once for an
    event of any other kind, or none) with a test of the paths such an event's fields can hold
    at all; the function it returns gets those fields. The detection engine's rule index probes
    only the fields an event of the kind can have (a process event never has a DNS or a log
    field), without asking the event its kind a second time.
    """
    reader: Callable[[events_pb2.Event], tuple[Fields, T]] = _compile_reader(
        *_plan(wanted, first), then=then
    )
    return reader


def _may_hold(kind: str | None) -> Callable[[str], bool]:
    # The paths event_fields can give an event of this payload kind (None: no known payload):
    # labels with any kind, a log record's own fields with a log only.
    payload = PAYLOAD_PATHS.get(kind, frozenset()) if kind is not None else frozenset()
    prefixes = (LABEL_PREFIX, LOG_FIELD_PREFIX) if kind == "log" else (LABEL_PREFIX,)

    def may_hold(path: str) -> bool:
        return path in HEADER_PATHS or path in payload or path.startswith(prefixes)

    return may_hold


def fields_writer(wanted: Collection[str]) -> FieldsWriter:
    """`fields_reader(wanted)` that adds the paths to the dict it is given (and returns it),
    for paths wanted only now and then: no second dict to build and merge."""
    writer: FieldsWriter = _compile_reader(*_plan(wanted, ()), into=True)
    return writer


def _plan(
    wanted: Collection[str], first: Sequence[str]
) -> tuple[
    tuple[tuple[str, str], ...],
    bool,
    bool,
    Mapping[str, tuple[tuple[tuple[str, str], ...], tuple[_Extra, ...]]],
]:
    want = set(wanted)
    for kind_parts in _PARTS.values():  # a wanted part needs the copies it reads
        for paths, _, needs in kind_parts:
            if not paths.isdisjoint(want):
                want |= needs
    plans: dict[str, tuple[tuple[tuple[str, str], ...], tuple[_Extra, ...]]] = {}
    log_fields = any(p.startswith(LOG_FIELD_PREFIX) for p in want)
    for kind, copies in _COPIES.items():
        wanted_copies = tuple((path, attr) for path, attr in copies if path in want)
        extras = tuple(extra for paths, extra, _ in _PARTS[kind] if not paths.isdisjoint(want))
        if kind == "log" and log_fields:
            extras = (_log_extra,)
        if wanted_copies or extras:
            plans[kind] = (wanted_copies, extras)
    ordered = {kind: plans[kind] for kind in first if kind in plans}
    ordered.update(plans)
    return (
        tuple((path, attr) for path, attr in _HEADER_COPIES if path in want),
        _OUTCOME_PATH in want,
        any(p.startswith(LABEL_PREFIX) for p in want),
        ordered,
    )


# The two derived values nearly every process rule reads, written out in the reader instead of
# called (a call cost as much as the work): the same as _process_name and _process_parent_name,
# whose output a test compares with event_fields'.
_INLINE_EXTRAS: Final[Mapping[_Extra, tuple[str, ...]]] = {
    _process_name: (
        "v = p.name or out.get('process.executable', '').rpartition('/')[2]",
        "if v:",
        "    out['process.name'] = v",
    ),
    _process_parent_name: (
        "v = out.get('process.parent.executable')",
        "if v:",
        "    out['process.parent.name'] = v.rpartition('/')[2]",
    ),
}


def _compile_reader(
    headers: tuple[tuple[str, str], ...],
    outcome: bool,
    labels: bool,
    plans: Mapping[str, tuple[tuple[tuple[str, str], ...], tuple[_Extra, ...]]],
    *,
    into: bool = False,
    then: Callable[[Callable[[str], bool]], Callable[[Fields], Any]] | None = None,
) -> Any:
    """The reader as one straight-line function, written out and compiled once per plan.

    A loop over (path, attrgetter) pairs spent a fifth of a process event's reading time on the
    loop, the getter calls and the tuple unpacking rather than in the protobuf runtime
    (bench/detection.py); `ev.action` written out in the source costs one attribute load. The
    source is built only from this module's own tables (paths and attribute names, checked
    below), never from event or rule data.
    """
    lines = ["def read(ev, out):"] if into else ["def read(ev):", "    out = {}"]
    namespace: dict[str, Any] = {"_OUTCOMES": _OUTCOMES, "_LABEL_PREFIX": LABEL_PREFIX}

    def copy(indent: str, source: str, path: str, attr: str) -> None:
        if not attr.isidentifier():
            raise ValueError(f"not an attribute name: {attr!r}")
        lines.extend(
            (f"{indent}v = {source}.{attr}", f"{indent}if v:", f"{indent}    out[{path!r}] = v")
        )

    for path, attr in headers:
        copy("    ", "ev", path, attr)
    if outcome:
        lines.append("    v = _OUTCOMES.get(ev.outcome)")
        lines.append(f"    if v is not None:\n        out[{_OUTCOME_PATH!r}] = v")
    if labels:
        lines.append("    if ev.labels:")
        lines.append("        for k, v in ev.labels.items():")
        lines.append("            out[_LABEL_PREFIX + k] = v")
    if plans:
        lines.append('    kind = ev.WhichOneof("payload")')
        for number, (kind, (copies, extras)) in enumerate(plans.items()):
            if not kind.isidentifier():
                raise ValueError(f"not a payload name: {kind!r}")
            lines.append(f"    {'if' if number == 0 else 'elif'} kind == {kind!r}:")
            lines.append(f"        p = ev.{kind}")
            for path, attr in copies:
                copy("        ", "p", path, attr)
            for position, extra in enumerate(extras):
                inline = _INLINE_EXTRAS.get(extra)
                if inline is not None:
                    lines.extend("        " + line for line in inline)
                    continue
                name = f"_extra_{number}_{position}"
                namespace[name] = extra
                lines.append(f"        {name}(ev, p, out)")
            if then is not None:
                namespace[f"_then_{number}"] = then(_may_hold(kind))
                lines.append(f"        return out, _then_{number}(out)")
    if then is not None:
        namespace["_then"] = then(_may_hold(None))
        lines.append("    return out, _then(out)")
    else:
        lines.append("    return out")
    exec("\n".join(lines), namespace)  # noqa: S102  # our own tables only, see above
    return namespace["read"]
