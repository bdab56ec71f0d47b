"""ZeekLogParser on hand-written JSON and TSV entries of each default log."""

from __future__ import annotations

import pytest

from agent.sources.base import Skipped
from agent.sources.zeek.parser import (
    TsvHeader,
    ZeekLogParser,
    flatten_json,
    parse_ts,
    unescape,
)
from canhgac.fields import event_fields
from canhgac.v1 import events_pb2
from tests.agent.sources.harness import CLOCK_NS
from tests.agent.sources.zeek import samples as s


def parser(log: str, header: TsvHeader | None = None) -> ZeekLogParser:
    return ZeekLogParser(
        log, agent_id="agent-1", host="sensor1", clock_ns=lambda: CLOCK_NS, header=header
    )


def event(log: str, line: str) -> events_pb2.Event:
    parsed = parser(log).parse(line)
    assert isinstance(parsed, events_pb2.Event), parsed
    return parsed


def feed(p: ZeekLogParser, lines: list[str]) -> list[events_pb2.Event | Skipped]:
    out: list[events_pb2.Event | Skipped] = []
    for text in lines:
        parsed = p.parse(text)
        if parsed is not None:
            out.append(parsed)
    return out


def test_json_http_entry_becomes_a_log_record() -> None:
    ev = event("http", s.HTTP_WEBSHELL)
    assert (ev.category, ev.type, ev.action, ev.source) == (
        "network",
        "protocol",
        "http_request",
        "zeek",
    )
    assert ev.time_ns == s.TS_NS
    assert ev.created_ns == CLOCK_NS
    assert ev.original == s.HTTP_WEBSHELL
    assert (ev.log.format, ev.log.name) == ("zeek", "http")
    f = ev.log.fields
    assert f["id.orig_h"] == "198.51.100.23"
    assert f["id.resp_p"] == "80"
    assert f["uri"] == "/uploads/2025/img/shell.php?cmd=id"
    assert f["user_agent"] == "python-requests/2.31.0"
    assert f["status_code"] == "200"
    assert f["resp_mime_types"] == "text/plain"
    assert "tags" not in f  # an empty set is left out


def test_nested_json_is_flattened_and_lists_joined() -> None:
    f = event("http", s.HTTP_WEBDAV_EXE).log.fields
    assert f["id.orig_h"] == "10.20.1.33"
    assert f["id.resp_p"] == "80"
    assert f["resp_mime_types"] == "application/x-dosexec,application/octet-stream"


@pytest.mark.parametrize(
    ("log", "line", "action", "checks"),
    [
        (
            "smb_files",
            s.SMB_WRITE_EXE,
            "smb_file_access",
            {"action": "SMB::FILE_WRITE", "path": "\\\\FS01\\ADMIN$", "name": "Temp\\svc_upd.exe"},
        ),
        ("smb_files", s.SMB_PSEXEC_PIPE, "smb_file_access", {"name": "RemCom_stdout", "size": "0"}),
        ("smb_mapping", s.SMB_MAPPING, "smb_share_mapping", {"share_type": "DISK"}),
        (
            "dce_rpc",
            s.DCE_RPC_CREATE_SERVICE,
            "rpc_call",
            {"endpoint": "svcctl", "operation": "CreateServiceW", "rtt": "0.000412"},
        ),
        ("dce_rpc", s.DCE_RPC_EFS, "rpc_call", {"operation": "EfsRpcOpenFileRaw"}),
        (
            "kerberos",
            s.KERBEROS_TGS_RC4,
            "kerberos_request",
            {"request_type": "TGS", "cipher": "rc4-hmac", "success": "true"},
        ),
        (
            "rdp",
            s.RDP_FROM_INTERNET,
            "rdp_connection",
            {"cookie": "administrator", "client_channels": "rdpdr,rdpsnd,cliprdr"},
        ),
        (
            "x509",
            s.X509_COBALT_LIKE,
            "certificate_observed",
            {
                "certificate.serial": "8BB00EE",
                "san.dns": "a.example.net,b.example.net",
                "basic_constraints.ca": "false",
            },
        ),
    ],
)
def test_json_entries_of_each_log(log: str, line: str, action: str, checks: dict[str, str]) -> None:
    ev = event(log, line)
    assert ev.log.name == log
    assert ev.action == action
    for name, value in checks.items():
        assert ev.log.fields[name] == value


def test_kerberos_success_sets_the_outcome() -> None:
    assert event("kerberos", s.KERBEROS_TGS_RC4).outcome == events_pb2.OUTCOME_SUCCESS


def test_iso_timestamps_and_writer_metadata() -> None:
    # Read from a file named otherwise: `_path` names the log, `_node` the sensor.
    ev = event("ssl_mirror", s.SSL_ISO_TS)
    assert ev.log.name == "ssl"
    assert ev.log.hostname == "sensor-hn-01"
    assert ev.time_ns == s.TS_NS
    assert ev.log.fields["established"] == "true"
    assert not any(name.startswith("_") for name in ev.log.fields)


def test_tsv_http_with_unset_empty_and_set_values() -> None:
    p = parser("http")
    out = feed(p, [*s.HTTP_HEADER, s.HTTP_TSV_WEBSHELL])
    assert len(out) == 1
    assert isinstance(out[0], events_pb2.Event)
    ev = out[0]
    assert ev.time_ns == s.TS_NS
    assert ev.original == s.HTTP_TSV_WEBSHELL
    f = ev.log.fields
    assert f["uri"] == "/upload/files/cmd.aspx?c=whoami"
    assert f["user_agent"] == "curl/8.5.0"
    assert f["resp_mime_types"] == "text/html,text/plain"
    assert "referrer" not in f  # unset
    assert "tags" not in f  # (empty)


def test_tsv_bool_and_escapes() -> None:
    ev = feed(parser("kerberos"), [*s.KERBEROS_HEADER, s.KERBEROS_TSV_FAIL])[0]
    assert isinstance(ev, events_pb2.Event)
    assert ev.log.fields["success"] == "false"
    assert ev.outcome == events_pb2.OUTCOME_FAILURE
    smb = feed(parser("smb_files"), [*s.SMB_HEADER, s.SMB_TSV_ESCAPED])[0]
    assert isinstance(smb, events_pb2.Event)
    assert smb.log.fields["name"] == "Báo cáo\tq4.xlsx"
    assert smb.log.fields["path"] == "\\\\FS01\\PhongTaiChinh"


def test_tsv_header_change_mid_file() -> None:
    p = parser("http")
    fields = ["ts", "uid", "method", "uri"]
    new_header = s.tsv_header("http", fields, ["time", "string", "string", "string"])
    old_row = s.HTTP_TSV_WEBSHELL
    new_row = s.T.join(["1764496900.5", "Cx1", "GET", "/index.html"])
    out = feed(
        p,
        [*s.HTTP_HEADER, old_row, f"#close{s.T}2025-11-30-11-00-00", *new_header, new_row, old_row],
    )
    assert isinstance(out[0], events_pb2.Event)
    assert isinstance(out[1], events_pb2.Event)
    assert out[1].log.fields == {
        "ts": "1764496900.5",
        "uid": "Cx1",
        "method": "GET",
        "uri": "/index.html",
    }
    assert out[1].time_ns == 1_764_496_900_500_000_000
    # A row of the old shape after the new header no longer fits.
    assert out[2] == Skipped("column_count")


def test_custom_set_separator_is_joined_with_commas() -> None:
    header = s.tsv_header("rdp", ["ts", "client_channels"], ["time", "vector[string]"], set_sep="|")
    out = feed(parser("rdp"), [*header, s.T.join(["1764496800", "rdpdr|cliprdr"])])
    assert isinstance(out[0], events_pb2.Event)
    assert out[0].log.fields["client_channels"] == "rdpdr,cliprdr"


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        (['{"ts": 1764496800, "uid": '], "bad_json"),
        (["[1, 2, 3]"], "json_not_object"),
        (['{"ts": 1}', "{}"], None),
        (["   "], "empty_line"),
        ([s.HTTP_TSV_WEBSHELL], "no_tsv_header"),
        ([*s.HTTP_HEADER, s.T.join(["1764496800.1", "C1", "10.0.0.1"])], "column_count"),
        (
            [*s.KERBEROS_HEADER, s.KERBEROS_TSV_FAIL.replace("1764496800.123456", "yesterday")],
            "bad_timestamp",
        ),
        (['{"ts": "2025-11-30 10:00:00", "uid": "C1"}'], "bad_timestamp"),  # no zone
        (["#fields"], "bad_tsv_header"),
        (["#separator ::"], "bad_tsv_header"),
        ([f"#frobnicate{s.T}x"], "bad_tsv_header"),
        ([f"#fields{s.T}ts{s.T}ts"], "bad_tsv_header"),
    ],
)
def test_malformed_lines_are_reported_with_a_reason(lines: list[str], reason: str | None) -> None:
    out = feed(parser("http"), lines)
    skipped = [o.reason for o in out if isinstance(o, Skipped)]
    assert skipped == ([reason] if reason else [])


def test_json_without_a_timestamp_is_stamped_now() -> None:
    ev = parser("http").parse('{"uid": "C1", "method": "GET"}')
    assert isinstance(ev, events_pb2.Event)
    assert ev.time_ns == CLOCK_NS
    assert parser("http").parse('{"ts": "x"}') == Skipped("bad_timestamp")


def test_header_round_trips_through_a_checkpoint() -> None:
    p = parser("http")
    feed(p, s.HTTP_HEADER)
    assert p.header is not None
    again = TsvHeader.from_dict(p.header.to_dict())
    resumed = parser("http", header=again)
    ev = resumed.parse(s.HTTP_TSV_WEBSHELL)
    assert isinstance(ev, events_pb2.Event)
    assert ev.log.fields["method"] == "GET"
    with pytest.raises(ValueError, match="invalid header"):
        TsvHeader.from_dict({"separator": "\t"})


def test_helpers() -> None:
    assert parse_ts("1764496800") == 1_764_496_800_000_000_000
    assert parse_ts("1764496800.5") == 1_764_496_800_500_000_000
    assert parse_ts("2025-11-30T10:00:00.123456+00:00") == s.TS_NS
    with pytest.raises(ValueError, match="not a Zeek timestamp"):
        parse_ts("-5")
    assert unescape("a\\x5cb\\x7") == "a\\b\\x7"
    assert flatten_json({"a": {"b": None, "c": [1, True]}, "d": 1.5}) == {
        "a.c": "1,true",
        "d": "1.5",
    }


def test_fields_reach_the_detection_vocabulary() -> None:
    fields = event_fields(event("smb_files", s.SMB_WRITE_EXE))
    assert fields["canhgac.log.format"] == "zeek"
    assert fields["canhgac.log.name"] == "smb_files"
    assert fields["canhgac.log.fields.name"] == "Temp\\svc_upd.exe"
    assert fields["event.original"] == s.SMB_WRITE_EXE


@pytest.mark.parametrize(
    "ts", ["99999999999.0", "9999-12-31T00:00:00+00:00", "0001-01-01T00:00:00+00:00"]
)
def test_a_timestamp_outside_int64_nanoseconds_is_a_bad_timestamp(ts: str) -> None:
    with pytest.raises(ValueError, match="out of range"):
        parse_ts(ts)
    parsed = parser("http").parse(f'{{"ts": "{ts}", "uid": "C1"}}')
    assert isinstance(parsed, Skipped)
    assert parsed.reason == "bad_timestamp"
