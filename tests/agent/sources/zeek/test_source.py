"""ZeekSource against a real Zeek-like log directory written while it runs."""

from __future__ import annotations

import json
from pathlib import Path

from agent.sources.zeek import ZeekConfig, ZeekSource
from agent.sources.zeek.config import DEFAULT_LOGS
from canhgac.v1 import events_pb2
from tests.agent.sources.harness import CollectingSink, context, running, wait_until
from tests.agent.sources.zeek import samples as s


def config(*directories: Path, **kw: object) -> ZeekConfig:
    return ZeekConfig.model_validate(
        {"directories": [str(d) for d in directories], "poll_interval_ms": 10, **kw}
    )


def append(path: Path, *lines: str) -> None:
    with path.open("a") as f:
        f.writelines(line + "\n" for line in lines)


def uris(sink: CollectingSink) -> list[str]:
    return [e.log.fields.get("uri", "") for e in sink.events if e.log.name == "http"]


def test_defaults_leave_out_conn_and_dns() -> None:
    assert "conn" not in DEFAULT_LOGS
    assert "dns" not in DEFAULT_LOGS
    assert ZeekConfig().directories[0] == "/opt/zeek/logs/current"


async def test_unavailable_until_the_directory_appears(tmp_path: Path) -> None:
    current = tmp_path / "logs" / "current"
    source = ZeekSource(config(tmp_path / "absent", current), directory_interval=0.01)
    sink = CollectingSink()
    async with running(source, sink):
        await wait_until(lambda: source.health.state == "unavailable")
        assert "no Zeek log directory" in source.health.detail
        assert str(current) in source.health.detail
        current.mkdir(parents=True)
        append(current / "http.log", s.HTTP_WEBSHELL)
        await wait_until(lambda: len(sink.events) == 1)
        assert source.directory == str(current)
        assert source.health.state == "running"
        assert "not written yet" in source.health.detail  # rdp.log ... not there: no problem


async def test_json_and_tsv_logs_with_malformed_lines_counted(tmp_path: Path) -> None:
    append(tmp_path / "http.log", s.HTTP_WEBSHELL, "{not json", s.HTTP_PLAIN)
    append(tmp_path / "kerberos.log", *s.KERBEROS_HEADER, s.KERBEROS_TSV_FAIL, "a\tb")
    append(tmp_path / "conn.log", '{"ts": 1764496800, "uid": "Cnot-read"}')  # not configured
    source = ZeekSource(config(tmp_path))
    sink = CollectingSink()
    async with running(source, sink):
        await wait_until(lambda: len(sink.events) == 3)
        await wait_until(lambda: sum(source.health.unparsed.values()) == 2)
    assert source.health.unparsed == {"bad_json": 1, "column_count": 1}
    assert sorted(e.log.name for e in sink.events) == ["http", "http", "kerberos"]
    assert all(e.source == "zeek" and e.agent_id == "agent-1" for e in sink.events)
    assert source.health.events == 3
    assert set(sink.checkpoints) == {f"zeek:{tmp_path}/http.log", f"zeek:{tmp_path}/kerberos.log"}


def _http_row(uri: str) -> str:
    fields = s.HTTP_TSV_WEBSHELL.split(s.T)
    fields[8] = uri
    return s.T.join(fields)


async def test_rotation_and_restart_neither_lose_nor_repeat(tmp_path: Path) -> None:
    log = tmp_path / "http.log"
    append(log, *s.HTTP_HEADER, _http_row("/a1"), _http_row("/a2"))
    source = ZeekSource(config(tmp_path, logs=["http"]))
    sink = CollectingSink()
    async with running(source, sink):
        await wait_until(lambda: uris(sink) == ["/a1", "/a2"])
        append(log, _http_row("/a3"))
        # Zeek's rotation: the current file is renamed away (later archived) and a new one,
        # with its own header block, is started at the same path.
        log.rename(tmp_path / "http.2025-11-30-10-00-00.log")
        append(tmp_path / "http.2025-11-30-10-00-00.log", f"#close{s.T}2025-11-30-11-00-00")
        append(log, *s.HTTP_HEADER, _http_row("/b1"))
        await wait_until(lambda: uris(sink) == ["/a1", "/a2", "/a3", "/b1"])
    saved = dict(sink.checkpoints)

    # The agent stops; Zeek writes on; the agent starts again from its checkpoint, mid-way
    # through a TSV file whose header lies before the checkpoint.
    append(log, _http_row("/b2"), "{bad")
    restarted = ZeekSource(config(tmp_path, logs=["http"]))
    again = CollectingSink()
    async with running(restarted, again, context(saved)):
        await wait_until(lambda: uris(again) == ["/b2"])
        await wait_until(lambda: restarted.health.unparsed.get("bad_json") == 1)
    assert again.events[0].log.fields["method"] == "GET"


async def test_a_bad_checkpoint_reads_the_file_again_and_is_counted(tmp_path: Path) -> None:
    append(tmp_path / "http.log", s.HTTP_WEBSHELL)
    key = f"zeek:{tmp_path}/http.log"

    async def resume_from(bad: str) -> None:
        source = ZeekSource(config(tmp_path, logs=["http"]))
        sink = CollectingSink()
        async with running(source, sink, context({key: bad})):
            await wait_until(lambda: len(sink.events) == 1)
        assert source.health.unparsed == {"bad_checkpoint": 1}

    for bad in ("not json", json.dumps({"v": 2}), json.dumps({"v": 1, "tail": "{}"})):
        await resume_from(bad)


async def test_unreadable_logs_make_the_source_unavailable(tmp_path: Path) -> None:
    append(tmp_path / "http.log", s.HTTP_WEBSHELL)

    def deny(path: str) -> int:
        raise PermissionError(13, "Permission denied", path)

    source = ZeekSource(config(tmp_path, logs=["http"]), opener=deny, retry_interval=0.01)
    sink = CollectingSink()
    async with running(source, sink):
        await wait_until(lambda: source.health.state == "unavailable")
    assert "permission denied" in source.health.detail
    assert "group zeek" in source.health.detail
    assert sink.events == []


def test_event_kinds_are_network_records() -> None:
    from agent.sources.zeek.parser import ZeekLogParser

    p = ZeekLogParser("x509", agent_id="a", host="h", clock_ns=lambda: 1)
    ev = p.parse(s.X509_COBALT_LIKE)
    assert isinstance(ev, events_pb2.Event)
    assert (ev.category, ev.type) == ("network", "info")
