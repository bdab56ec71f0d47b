"""decode_entry on journalctl JSON lines, including the shapes journalctl gives odd values."""

from __future__ import annotations

import json

import pytest

from agent.sources.journald.entry import EntryError, JournalEntry, decode_entry, field_text

CURSOR = "s=09ee6304;i=1;b=0123;m=64;t=660dc7eff5c00;x=5eae"


def line(**fields: object) -> bytes:
    base: dict[str, object] = {
        "__CURSOR": CURSOR,
        "__REALTIME_TIMESTAMP": "1795350000123456",
        "_HOSTNAME": "web1",
        "SYSLOG_IDENTIFIER": "sshd",
        "_PID": "42",
        "MESSAGE": "Failed password for root from 1.2.3.4 port 22 ssh2  ",
    }
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...}).encode()


def test_decodes_the_fields_auth_parsing_needs() -> None:
    assert decode_entry(line()) == JournalEntry(
        cursor=CURSOR,
        time_ns=1_795_350_000_123_456_000,
        host="web1",
        program="sshd",
        pid=42,
        message="Failed password for root from 1.2.3.4 port 22 ssh2",
    )


def test_fallbacks_comm_and_syslog_pid() -> None:
    got = decode_entry(line(SYSLOG_IDENTIFIER=..., _COMM="useradd", _PID=..., SYSLOG_PID="7"))
    assert (got.program, got.pid) == ("useradd", 7)
    assert decode_entry(line(_PID=..., _HOSTNAME=...)).pid == 0


def test_byte_array_and_repeated_fields() -> None:
    got = decode_entry(line(MESSAGE=list(b"caf\xc3\xa9 \xff"), _HOSTNAME=["a", "b"]))
    assert (got.message, got.host) == ("café \ufffd", "a")
    assert field_text([list(b"x\xfe"), "y"]) == "x\ufffd"
    assert field_text(None) is None
    assert field_text([]) is None


@pytest.mark.parametrize(
    ("raw", "reason", "has_cursor"),
    [
        (b"not json", "bad_json", False),
        (b'["a list"]', "bad_json", False),
        (b"\xff\xfe", "bad_json", False),
        (line(__CURSOR=...), "no_cursor", False),
        (line(__REALTIME_TIMESTAMP="soon"), "bad_timestamp", True),
        (line(MESSAGE=None), "no_message", True),  # over journalctl's 64 KiB display limit
        (line(SYSLOG_IDENTIFIER=..., _COMM=...), "no_program", True),
    ],
)
def test_unusable_lines_name_a_reason(raw: bytes, reason: str, has_cursor: bool) -> None:
    with pytest.raises(EntryError) as caught:
        decode_entry(raw)
    assert caught.value.reason == reason
    assert (caught.value.cursor == CURSOR) is has_cursor
