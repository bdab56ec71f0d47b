"""Nothing lost, nothing duplicated: real processes killed, restarted and cut off.

Each test streams N uniquely numbered sshd lines through a real agent (tailer, parser, spool,
shipper) to a real collector over TLS, disturbs one part, and then checks that every line was
stored exactly once.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.requirements import require

from .harness import System, line_counts, wait_for, write_lines

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

N = int(os.environ.get("CANHGAC_DELIVERY_EVENTS", "200000"))
# Generous bounds for a busy 2-core machine; they bound waiting, they do not measure speed.
DRAIN_TIMEOUT = 240


@pytest.fixture
def system(tmp_path: Path) -> Iterator[System]:
    s = System(tmp_path)
    yield s
    s.stop()


def assert_exactly_once(s: System, n: int) -> None:
    counts = line_counts(s.stored_events())
    missing = n - len(counts)
    dupes = {k: v for k, v in counts.items() if v != 1}
    assert missing == 0, f"{missing} of {n} lines never stored"
    assert not dupes, f"{len(dupes)} lines stored more than once, e.g. {list(dupes.items())[:3]}"


def feed_all(s: System) -> None:
    """Write N lines in chunks, as a busy log grows."""
    chunk = 20_000
    for start in range(0, N, chunk):
        write_lines(s.log, start, min(chunk, N - start))


def test_collector_killed_mid_stream(system: System) -> None:
    system.start_collector()
    system.start_agent()
    feed_all(system)
    wait_for(lambda: system.stored_count() >= N // 5, DRAIN_TIMEOUT, "a fifth of the stream")
    system.kill_collector()
    assert system.stored_count() < N, "the stream finished before the kill: raise N"
    system.start_collector()
    wait_for(lambda: system.stored_count() >= N, DRAIN_TIMEOUT, "every event stored")
    assert_exactly_once(system, N)


def test_agent_killed_mid_stream(system: System) -> None:
    system.start_collector()
    system.start_agent()
    feed_all(system)
    wait_for(lambda: system.stored_count() >= N // 5, DRAIN_TIMEOUT, "a fifth of the stream")
    system.kill_agent()
    assert system.stored_count() < N, "the stream finished before the kill: raise N"
    system.start_agent()
    wait_for(lambda: system.stored_count() >= N, DRAIN_TIMEOUT, "every event stored")
    assert_exactly_once(system, N)


def test_collector_down_while_agent_produces(system: System) -> None:
    system.start_collector()
    system.start_agent()
    write_lines(system.log, 0, 1000)
    wait_for(lambda: system.stored_count() >= 1000, DRAIN_TIMEOUT, "the first events")
    system.kill_collector()
    write_lines(system.log, 1000, N - 1000)
    spool = system.root / "agent" / "spool.db"
    wait_for(lambda: spool_events(spool) >= N - 1000, DRAIN_TIMEOUT, "the agent to spool all")
    system.start_collector()
    wait_for(lambda: system.stored_count() >= N, DRAIN_TIMEOUT, "every event stored")
    assert_exactly_once(system, N)


def spool_events(path: Path) -> int:
    import sqlite3

    if not path.exists():
        return 0
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return int(con.execute("SELECT count(*) FROM events").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def test_damaged_spool_rows_are_skipped_reported_and_the_rest_delivered(system: System) -> None:
    n = 2000
    system.start_agent()  # no collector yet: everything stays in the spool
    write_lines(system.log, 0, n)
    spool = system.root / "agent" / "spool.db"
    wait_for(lambda: spool_events(spool) >= n, 60, "the agent to spool every line")
    system.stop()
    damaged = damage_events(spool, ["u0000100", "u0000200", "u0000300"])
    assert damaged == 3
    system.start_collector()
    system.start_agent()
    wait_for(lambda: system.stored_count() >= n - 3, DRAIN_TIMEOUT, "the undamaged events")
    events = system.stored_events()
    counts = line_counts(events)
    assert set(counts.values()) == {1}
    assert {"u0000100", "u0000200", "u0000300"}.isdisjoint(counts)
    assert len(counts) == n - 3

    def reported() -> bool:
        for ev in system.stored_events():
            if ev.WhichOneof("payload") == "agent_status":
                for d in ev.agent_status.drops:
                    if (d.source, d.reason) == ("spool", "corrupt_event") and d.count == 3:
                        return True
        return False

    wait_for(reported, 60, "the agent to report the three damaged events")


def damage_events(db: Path, users: list[str]) -> int:
    """Flip bytes inside the stored events of the given users, in the file on disk."""
    data = bytearray(db.read_bytes())
    hit = 0
    for user in users:
        at = data.find(user.encode())
        if at >= 0:
            data[at + 1 : at + 3] = b"##"
            hit += 1
    db.write_bytes(bytes(data))
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    return hit


@pytest.fixture
def netns_pair() -> Iterator[dict[str, str]]:
    """Two network namespaces joined by a veth pair, made and removed by this test."""
    require(os.geteuid() == 0 and shutil.which("ip") is not None, "root and iproute2 (ip netns)")
    tag = secrets.token_hex(3)
    octet = secrets.randbelow(250) + 1
    ns = {
        "collector_ns": f"cgc{tag}",
        "agent_ns": f"cga{tag}",
        "collector_if": f"vc{tag}",
        "agent_if": f"va{tag}",
        "collector_ip": f"10.211.{octet}.1",
        "agent_ip": f"10.211.{octet}.2",
    }

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    ip("netns", "add", ns["collector_ns"])
    ip("netns", "add", ns["agent_ns"])
    try:
        ip("link", "add", ns["collector_if"], "type", "veth", "peer", "name", ns["agent_if"])
        ip("link", "set", ns["collector_if"], "netns", ns["collector_ns"])
        ip("link", "set", ns["agent_if"], "netns", ns["agent_ns"])
        for side in ("collector", "agent"):
            name = ns[f"{side}_ns"]
            ip("-n", name, "addr", "add", f"{ns[side + '_ip']}/30", "dev", ns[f"{side}_if"])
            ip("-n", name, "link", "set", ns[f"{side}_if"], "up")
            ip("-n", name, "link", "set", "lo", "up")
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns["collector_ns"]], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns["agent_ns"]], capture_output=True)


def test_network_cut_and_heal(tmp_path: Path, netns_pair: dict[str, str]) -> None:
    s = System(
        tmp_path,
        listen_host=netns_pair["collector_ip"],
        connect_host=netns_pair["collector_ip"],
        collector_netns=netns_pair["collector_ns"],
        agent_netns=netns_pair["agent_ns"],
        grpc_port=9440,
    )
    try:
        s.start_collector()
        s.start_agent()
        feed_all(s)
        wait_for(lambda: s.stored_count() >= N // 5, DRAIN_TIMEOUT, "a fifth of the stream")
        link = ["ip", "-n", netns_pair["agent_ns"], "link", "set", netns_pair["agent_if"]]
        subprocess.run([*link, "down"], check=True)
        cut_at = s.stored_count()
        # The cut itself is the scenario: hold the link down long enough for in-flight
        # batches to fail and the agent to start backing off.
        time.sleep(3)
        assert s.stored_count() - cut_at <= 1000, "events still arrived over a cut link"
        subprocess.run([*link, "up"], check=True)
        wait_for(lambda: s.stored_count() >= N, DRAIN_TIMEOUT, "every event after the heal")
        assert_exactly_once(s, N)
    finally:
        s.stop()
