"""One line of `journalctl --output=json`, reduced to what the auth parsers need.

journalctl prints a field as a JSON string when it is valid UTF-8 text, as an array of byte
values when it is not, as an array of those when the entry holds the field more than once, and
as null when the value is larger than its 64 KiB display limit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from agent.sources.base import pid_from_text, time_ns_in_range

# Only these are asked for (`--output-fields`); journalctl always adds __CURSOR and the
# timestamps. Keeps each line small and cheap to decode.
OUTPUT_FIELDS = ("MESSAGE", "_HOSTNAME", "SYSLOG_IDENTIFIER", "_COMM", "_PID", "SYSLOG_PID")


@dataclass(frozen=True)
class JournalEntry:
    cursor: str
    time_ns: int
    host: str
    program: str
    pid: int
    message: str


class EntryError(ValueError):
    """A line that yields no entry. `reason` is a counter label; `cursor` is the entry's
    cursor when the line had one, so reading can still move past it."""

    def __init__(self, reason: str, cursor: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.cursor = cursor


def decode_entry(line: bytes) -> JournalEntry:
    """Decode one JSON line; raise EntryError (`bad_json`, `no_cursor`, `bad_timestamp`,
    `no_message`, `no_program`) when it cannot be used."""
    try:
        fields = json.loads(line)
    except ValueError:  # includes UnicodeDecodeError
        raise EntryError("bad_json") from None
    if not isinstance(fields, dict):
        raise EntryError("bad_json")
    cursor = fields.get("__CURSOR")
    if not isinstance(cursor, str) or not cursor:
        raise EntryError("no_cursor")
    realtime = field_text(fields.get("__REALTIME_TIMESTAMP"))
    if realtime is None or not (realtime.isascii() and realtime.isdigit()):
        raise EntryError("bad_timestamp", cursor)
    if not time_ns_in_range(int(realtime) * 1000):
        raise EntryError("bad_timestamp", cursor)
    message = field_text(fields.get("MESSAGE"))
    if message is None:
        raise EntryError("no_message", cursor)
    program = field_text(fields.get("SYSLOG_IDENTIFIER")) or field_text(fields.get("_COMM"))
    if not program:
        raise EntryError("no_program", cursor)
    return JournalEntry(
        cursor=cursor,
        time_ns=int(realtime) * 1000,  # µs since the epoch
        host=field_text(fields.get("_HOSTNAME")) or "",
        program=program,
        pid=_pid(fields),
        message=message.strip(),
    )


def field_text(value: object) -> str | None:
    """A field's value as text: bytes not valid UTF-8 become U+FFFD (protobuf strings must be
    UTF-8); of a field given several times, the first value. None when absent or too large."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value:
        if all(isinstance(b, int) and 0 <= b <= 255 for b in value):
            return bytes(value).decode("utf-8", errors="replace")
        return field_text(value[0])
    return None


def _pid(fields: dict[str, object]) -> int:
    # _PID is set by journald from the sender's credentials; SYSLOG_PID is what the program
    # wrote in its syslog tag, the only one left for entries forwarded from elsewhere.
    for name in ("_PID", "SYSLOG_PID"):
        pid = pid_from_text(field_text(fields.get(name)))
        if pid:
            return pid
    return 0
