"""Real collector and agent processes for end-to-end tests: configs, start, stop, kill -9.

Everything listens on loopback (or inside network namespaces the test made) on free ports.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from canhgac.v1 import events_pb2
from tests.e2e.enrollment import enroll_agent

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
# How the systemd unit runs the agent (its Environment= line): -OO, docstrings and asserts left
# out of the loaded code, about 1.2 MB less steady memory (bench/footprint.py).
AGENT_ENVIRONMENT: dict[str, str] = {"PYTHONOPTIMIZE": "2"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def port_open(host: str, port: int, netns: str | None = None) -> bool:
    if netns is None:
        with socket.socket() as s:
            s.settimeout(1)
            return s.connect_ex((host, port)) == 0
    probe = (
        "import socket, sys; s = socket.socket(); s.settimeout(1); "
        f"sys.exit(s.connect_ex(({host!r}, {port})))"
    )
    return (
        subprocess.run(
            ["ip", "netns", "exec", netns, sys.executable, "-c", probe], capture_output=True
        ).returncode
        == 0
    )


@dataclass
class System:
    """A collector and an agent writing their state under `root`."""

    root: Path
    listen_host: str = "127.0.0.1"
    connect_host: str = "localhost"
    collector_netns: str | None = None
    agent_netns: str | None = None
    poll_ms: int = 100
    # The host sources beside the auth log ("process", "fim", ...) with their YAML values;
    # the delivery tests keep only the auth log, whose lines they count.
    extra_sources: dict[str, str] = field(default_factory=dict)
    rule_paths: list[Path] = field(default_factory=lambda: [ROOT / "rules"])
    # Further YAML lines for the collector's `detection:` section.
    detection_extra: str = ""
    grpc_port: int = field(default_factory=free_port)
    enroll_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    # Serve the HTTP side (/metrics, /healthz) on listen_host:http_port; off by default.
    http: bool = False
    # Further top-level YAML for the collector (a `forward:` section, ...).
    collector_extra: str = ""
    collector: subprocess.Popen[bytes] | None = None
    agent: subprocess.Popen[bytes] | None = None
    # The agent runs as deploy/systemd/canhgac-agent.service runs it: without docstrings and
    # asserts in its loaded code (AGENT_ENVIRONMENT), so the tests exercise that mode.
    agent_env: dict[str, str] = field(default_factory=lambda: dict(AGENT_ENVIRONMENT))
    # The agent program to run (bench/footprint.py runs one installed from a wheel).
    agent_bin: Path = BIN / "canhgac-agent"

    def __post_init__(self) -> None:
        self.log = self.root / "auth.log"
        self.log.touch()
        self.collector_cfg = self.root / "collector.yaml"
        self.agent_cfg = self.root / "agent.yaml"
        names = sorted({"localhost", self.connect_host})
        self.collector_cfg.write_text(
            f"""name: e2e
state_dir: {self.root / "collector"}
ingest:
  listen: "{self.listen_host}:{self.grpc_port}"
  enroll_listen: "{self.listen_host}:{self.enroll_port}"
tls: {{mode: auto, server_names: [{", ".join(names)}]}}
detection:
  rule_paths: [{", ".join(f'"{p}"' for p in self.rule_paths)}]
  {self.detection_extra}
dossiers: {{regime_dir: "{ROOT / "rules" / "regimes"}"}}
health: {{interval_s: 1}}
{self._http_yaml()}
{self.collector_extra}
logging: {{format: json}}
"""
        )
        self.agent_cfg.write_text(
            f"""agent_id: e2e-agent
state_dir: {self.root / "agent"}
collector:
  address: {self.connect_host}:{self.grpc_port}
  enroll_address: {self.connect_host}:{self.enroll_port}
  ca_file: {self.root / "collector" / "pki" / "ca.crt"}
shipper: {{backoff_initial_ms: 100, backoff_max_ms: 1000, heartbeat_interval_ms: 1000}}
sources:
  authlog: {{paths: ["{self.log}"], poll_interval_ms: {self.poll_ms}}}
{self._sources_yaml()}
# The tests write their lines in bursts of many thousands; the auth log is not throttled.
limits: {{per_source: {{authlog: {{events_per_second: 10000000, burst: 10000000}}}}}}
logging: {{format: json}}
"""
        )

    def _http_yaml(self) -> str:
        if not self.http:
            return "http: {enabled: false}"
        return f'http: {{enabled: true, listen: "{self.listen_host}:{self.http_port}"}}'

    def _sources_yaml(self) -> str:
        others = ("agent_status", "process", "fim", "sockets", "inventory", "journald", "netsensor")
        return "\n".join(f"  {sid}: {self.extra_sources.get(sid, 'null')}" for sid in others)

    def _spawn(
        self,
        args: list[str],
        netns: str | None,
        logname: str,
        env_extra: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        cmd = (["ip", "netns", "exec", netns] if netns else []) + args
        out = open(self.root / logname, "ab")  # noqa: SIM115  # closed with the process
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env_extra or {})}
        return subprocess.Popen(cmd, stderr=out, stdout=out, env=env)

    def start_collector(self) -> None:
        self.collector = self._spawn(
            [str(BIN / "canhgac-collector"), "run", "--config", str(self.collector_cfg)],
            self.collector_netns,
            "collector.log",
        )
        wait_for(
            lambda: (
                (self.root / "collector" / "pki" / "ca.crt").exists()
                and port_open(self.listen_host, self.grpc_port, self.collector_netns)
                and port_open(self.listen_host, self.enroll_port, self.collector_netns)
            ),
            30,
            "the collector to listen",
        )
        # The agent needs its certificate before it can ship (an agent already running keeps
        # spooling and connects once it is enrolled).
        if not (self.root / "agent" / "agent.crt").exists():
            enroll_agent(self.collector_cfg, self.agent_cfg, "e2e-agent", self.agent_netns)

    def start_agent(self) -> None:
        self.agent = self._spawn(
            [str(self.agent_bin), "run", "--config", str(self.agent_cfg)],
            self.agent_netns,
            "agent.log",
            self.agent_env,
        )

    @staticmethod
    def _end(proc: subprocess.Popen[bytes] | None, sig: int) -> int | None:
        if proc is None or proc.poll() is not None:
            return None if proc is None else proc.returncode
        proc.send_signal(sig)
        try:
            return proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def kill_collector(self) -> None:
        self._end(self.collector, signal.SIGKILL)

    def kill_agent(self) -> None:
        self._end(self.agent, signal.SIGKILL)

    def stop(self) -> tuple[int | None, int | None]:
        return self._end(self.agent, signal.SIGTERM), self._end(self.collector, signal.SIGTERM)

    def stored_events(self) -> list[events_pb2.Event]:
        """Every event in the collector's SQLite file (read-only, while it runs)."""
        import sqlite3

        db = self.root / "collector" / "collector.db"
        if not db.exists():
            return []
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            rows = con.execute("SELECT data FROM events ORDER BY row_id").fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            con.close()
        return [events_pb2.Event.FromString(r[0]) for r in rows]

    def stored_count(self) -> int:
        import sqlite3

        db = self.root / "collector" / "collector.db"
        if not db.exists():
            return 0
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            return int(con.execute("SELECT count(*) FROM events").fetchone()[0])
        except sqlite3.OperationalError:
            return 0
        finally:
            con.close()


def accepted_line(i: int) -> str:
    """A unique, rule-neutral sshd line (a successful key login), numbered i."""
    return (
        f"Nov 22 10:00:00 web sshd[{1000 + i % 50000}]: Accepted publickey for u{i:07d} "
        f"from 198.51.100.{i % 250 + 1} port {1024 + i % 60000} ssh2\n"
    )


def write_lines(path: Path, start: int, count: int) -> None:
    with path.open("a") as fh:
        fh.writelines(accepted_line(i) for i in range(start, start + count))


def line_counts(events: list[events_pb2.Event]) -> dict[str, int]:
    """How many times each numbered log line was stored (by its user name u0000042)."""
    counts: dict[str, int] = {}
    for ev in events:
        if ev.WhichOneof("payload") == "auth" and ev.auth.user.startswith("u"):
            counts[ev.auth.user] = counts.get(ev.auth.user, 0) + 1
    return counts
