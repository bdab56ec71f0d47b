"""Every host source in the real agent program, end to end to the collector's database.

The agent runs with the process, file-integrity, socket, inventory and agent-status sources on
this machine (the file-integrity source watches a directory of the test's own). The test makes
a short-lived process, changes a watched file and opens a listening socket, then finds each of
them, typed, in the collector's SQLite file.
"""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from canhgac.v1 import events_pb2
from tests.requirements import require

from .harness import System, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture
def system(tmp_path: Path) -> Iterator[System]:
    watched = tmp_path / "watched"
    watched.mkdir()
    (watched / "sshd_config").write_text("PermitRootLogin no\n")
    s = System(
        tmp_path,
        extra_sources={
            "process": "{}",
            "fim": f'{{paths: ["{watched}"], home_authorized_keys: false}}',
            "sockets": "{poll_interval_ms: 1000, include_loopback: true}",
            "inventory": "{}",
            "agent_status": "{interval_s: 10}",
        },
    )
    s.start_collector()
    s.start_agent()
    try:
        yield s
    finally:
        codes = s.stop()
        assert codes == (0, 0), (tmp_path / "agent.log").read_text()[-3000:]


def find(
    system: System, what: str, match: Callable[[events_pb2.Event], bool], timeout: float = 60
) -> events_pb2.Event:
    found: list[events_pb2.Event] = []

    def seen() -> bool:
        found[:] = [e for e in system.stored_events() if match(e)]
        return bool(found)

    wait_for(seen, timeout, what)
    return found[0]


def test_each_host_source_reaches_the_collector_typed(system: System, tmp_path: Path) -> None:
    require(os.geteuid() == 0, "root, for the process connector and socket attribution")

    inventory = find(system, "the inventory", lambda e: e.WhichOneof("payload") == "inventory")
    assert inventory.inventory.hostname == socket.gethostname()
    assert any("127.0.0.1" in i.addresses for i in inventory.inventory.interfaces)
    assert inventory.inventory.packages

    status = find(system, "an agent_status event", lambda e: e.action == "agent_status")
    states = {s.source: s.state for s in status.agent_status.sources}
    assert set(states) >= {"process", "fim", "sockets", "inventory", "authlog"}
    assert status.agent_status.rss_bytes > 0

    find(system, "the file baseline", lambda e: e.action == "baseline_created")

    # A short-lived process, named by an argument no other process has.
    marker = f"canhgac-{uuid.uuid4().hex}"
    # It lives 100 ms: long enough for /proc to be read under a loaded CI machine (the
    # 50 ms case is the process source's own test).
    subprocess.run(["/bin/sh", "-c", f"sleep 0.1; exit 7 # {marker}"], check=False)
    started = find(
        system,
        "the exec",
        lambda e: e.action == "exec" and marker in e.process.command_line,
    )
    assert os.path.realpath(started.process.executable) == os.path.realpath("/bin/sh")
    assert started.category == "process"
    exited = find(
        system,
        "the exit",
        lambda e: e.action == "exit" and e.process.pid == started.process.pid,
    )
    assert exited.process.exit_code == 7

    config = tmp_path / "watched" / "sshd_config"
    config.write_text("PermitRootLogin yes\n")
    changed = find(
        system,
        "the file change",
        lambda e: e.category == "file" and e.file.path == str(config) and e.action == "modified",
    )
    assert changed.file.sha256_old != changed.file.sha256_new
    assert len(changed.file.sha256_new) == 64

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        listening = find(
            system,
            "the listening socket",
            lambda e: e.action == "listen" and e.socket.local_port == port,
        )
    assert listening.socket.pid == os.getpid()

    # Issue 4's memory budget: the running agent keeps no library it has no use for. Each of
    # these was once loaded by an import the running agent did not need (argparse's terminal
    # width through shutil; the replay command's sensor and json_format), about 1.5 MB.
    assert system.agent is not None
    maps = Path(f"/proc/{system.agent.pid}/maps").read_text()
    loaded = {Path(line.split()[-1]).name.split(".")[0] for line in maps.splitlines()}
    assert not loaded & {"_bz2", "_lzma", "liblzma", "libbz2"}, sorted(loaded)
