"""The agent's footprint with every host source on: memory and CPU, quiet and under auth-log load.

Starts a collector and enrolls an agent (both on loopback, in a temporary directory), runs the
agent with all host sources on this machine (the real /proc, /etc, packages and sockets; the
auth log is a file of the run's own), lets it settle, then measures:

1. quiet: the host as it is, nothing written to the auth log;
2. load: `--rate` auth-log lines per second appended for `--load-s` seconds, then checks that
   every line reached the collector.

The agent measured is the one a server runs: installed from a wheel of this checkout into a
virtualenv of its own (agent dependencies only), run as its systemd unit runs it (-OO, with
compiled bytecode); `--checkout`, `--no-optimize` and `--no-bytecode` measure otherwise.

Prints steady RSS (median of 1 s samples; anonymous and file-backed parts), CPU in percent of
one core (the agent and its child processes), and compares them with the targets of issue 4:
RSS <= 40 MB, <= 1% of a core quiet, <= 10% at 1,000 auth lines/s.

    .venv/bin/python bench/footprint.py --quiet-s 60 --load-s 30
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The test harness (tests/) is not an installed package: reach it from the checkout, which is
# why the imports below come after this line.
sys.path.insert(0, str(ROOT))

from tests.e2e.harness import (  # noqa: E402
    AGENT_ENVIRONMENT,
    System,
    accepted_line,
    wait_for,
)

TICKS = os.sysconf("SC_CLK_TCK")
MB = 1_000_000
TARGET_RSS_MB, TARGET_QUIET_PCT, TARGET_LOAD_PCT = 40, 1.0, 10.0


ALL_SOURCES = (
    "authlog",
    "agent_status",
    "process",
    "fim",
    "sockets",
    "inventory",
    "syslog",
    "auditd",
    "zeek",
    "journald",
    "devicelog",
)
# Off unless asked for: journald needs a systemd journal, devicelog opens listening ports.
NOT_BY_DEFAULT = ("journald", "devicelog")


def sources_yaml(log: Path, enabled: set[str]) -> str:
    """The enabled sources at their defaults, except the auth log: the run's own file."""
    lines = ["sources:"]
    for sid in ALL_SOURCES:
        if sid not in enabled:
            lines.append(f"  {sid}: null")
        elif sid == "authlog":
            lines.append(f'  authlog: {{paths: ["{log}"]}}')
        else:
            lines.append(f"  {sid}: {{}}")
    return "\n".join(lines) + "\n"


@dataclass
class Samples:
    rss: list[int] = field(default_factory=list)
    anon: list[int] = field(default_factory=list)
    file: list[int] = field(default_factory=list)
    cpu_pct: float = 0.0

    def line(self, name: str) -> str:
        med = statistics.median(self.rss) / MB
        return (
            f"{name}: RSS median {med:.1f} MB (max {max(self.rss) / MB:.1f}; anonymous "
            f"{statistics.median(self.anon) / MB:.1f}, file-backed "
            f"{statistics.median(self.file) / MB:.1f}); CPU {self.cpu_pct:.2f}% of one core"
        )


def tree(pid: int) -> list[int]:
    """pid and its descendants (a source may run a helper program)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            kids = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        todo.extend(int(k) for k in kids)
    return out


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total


def memory(pid: int) -> tuple[int, int, int]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            values[key] = int(rest.split()[0]) * 1024
    return values["VmRSS"], values["RssAnon"], values["RssFile"]


def largest_mappings(pid: int, n: int = 8) -> list[tuple[str, int]]:
    """The mappings holding most of the RSS (shared libraries by file name, "[anonymous]" for
    the Python heap, malloc arenas and thread stacks), to say where the memory goes."""
    rss: dict[str, int] = {}
    name = "[anonymous]"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and not head[0].endswith(":"):
            path = head[5] if len(head) > 5 else ""
            name = Path(path).name if path.startswith("/") else (path or "[anonymous]")
        elif head and head[0] == "Rss:":
            rss[name] = rss.get(name, 0) + int(head[1]) * 1024
    return sorted(rss.items(), key=lambda kv: -kv[1])[:n]


def measure(pid: int, seconds: float, during: object = None) -> Samples:
    """Sample once a second for `seconds`; `during(t)` is called every 10 ms meanwhile."""
    s = Samples()
    start, t0 = time.monotonic(), cpu_ticks(tree(pid))
    next_sample = start + 1.0
    while (now := time.monotonic()) - start < seconds:
        if callable(during):
            during(now - start)
        if now >= next_sample:
            rss, anon, file = memory(pid)
            s.rss.append(rss)
            s.anon.append(anon)
            s.file.append(file)
            next_sample += 1.0
        time.sleep(0.01)  # the writer's and the sampler's tick
    s.cpu_pct = 100.0 * (cpu_ticks(tree(pid)) - t0) / TICKS / (time.monotonic() - start)
    return s


class LineWriter:
    """Appends `rate` numbered auth-log lines per second, paced on the clock."""

    def __init__(self, path: Path, rate: int) -> None:
        self.path, self.rate, self.written = path, rate, 0
        self.fh = path.open("a")

    def __call__(self, elapsed: float) -> None:
        due = int(elapsed * self.rate)
        if due > self.written:
            self.fh.writelines(accepted_line(i) for i in range(self.written, due))
            self.fh.flush()
            self.written = due


def verdict(value: float, target: float) -> str:
    return "meets" if value <= target else "DOES NOT MEET"


def install_agent(venv: Path) -> Path:
    """The agent as docs/operators/install.md installs it: a wheel of this checkout in a
    virtualenv of its own with the agent's dependencies only (no collector extras), so that
    what is measured is what runs on a server, not the development checkout (whose editable
    install adds an import hook, and whose virtualenv holds the collector's packages)."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # Built from a copy: setuptools writes its build/ and egg-info beside the sources.
    source = venv / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".*", "build", "dist", "artifacts", "demo-state", "*.egg-info", "__pycache__"
        ),
    )
    wheels = venv / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(source)], check=True)
    venv_pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*venv_pip, "install", *map(str, wheels.glob("*.whl"))], check=True)
    return venv / "bin" / "canhgac-agent"


def precompile(python: Path, cache: Path, level: str) -> None:
    """Bytecode for everything the agent loads, at the level its systemd unit runs it.

    The unit runs the agent with -OO and a bytecode cache it may write
    (tests.e2e.harness.AGENT_ENVIRONMENT), so a server compiles each module once. Here the
    cache is the run's own (PYTHONPYCACHEPREFIX), filled before the agent starts; the agent
    and collector started afterwards inherit the setting. Without it, where
    PYTHONDONTWRITEBYTECODE is set (this workplace sets it), every module would be compiled at
    every start.
    """
    os.environ["PYTHONPYCACHEPREFIX"] = str(cache)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    code = "import sys; print('\\n'.join(p for p in sys.path if p))"
    paths = subprocess.run(
        [str(python), "-c", code], check=True, capture_output=True, text=True
    ).stdout.split()
    trees = [p for p in paths if Path(p).is_dir()]
    subprocess.run(
        [str(python), "-m", "compileall", "-q", "-o", level, *trees],
        check=False,  # a file of the standard library's tests may not compile: not ours
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--settle-s", type=float, default=30)
    p.add_argument("--quiet-s", type=float, default=60)
    p.add_argument("--load-s", type=float, default=30)
    p.add_argument("--rate", type=int, default=1000)
    p.add_argument(
        "--sources",
        default=",".join(s for s in ALL_SOURCES if s not in NOT_BY_DEFAULT),
        help="comma-separated source ids to enable (default: every host source but journald, "
        "which needs a systemd journal, and devicelog, which listens on ports; the auth log is "
        "always on, the load is written to it)",
    )
    p.add_argument(
        "--no-bytecode",
        action="store_true",
        help="run the agent's modules from source, compiled at every start (the default is as "
        "installed: pip compiles bytecode at install time)",
    )
    p.add_argument(
        "--no-optimize",
        action="store_true",
        help="run the agent without -OO (PYTHONOPTIMIZE), unlike its systemd unit",
    )
    p.add_argument(
        "--checkout",
        action="store_true",
        help="run the agent of the development virtualenv instead of one installed from a wheel",
    )
    ns = p.parse_args()
    agent_env = {} if ns.no_optimize else dict(AGENT_ENVIRONMENT)
    enabled = set(ns.sources.split(",")) | {"authlog"}
    with tempfile.TemporaryDirectory(prefix="canhgac-footprint-") as tmp:
        if ns.checkout:
            agent_bin = Path(sys.executable).parent / "canhgac-agent"
        else:
            print("installing the agent from a wheel of this checkout ...")
            agent_bin = install_agent(Path(tmp) / "agent-venv")
        if not ns.no_bytecode:
            level = agent_env.get("PYTHONOPTIMIZE", "0")
            precompile(agent_bin.parent / "python", Path(tmp) / "pycache", level)
        system = System(Path(tmp), poll_ms=250, agent_env=agent_env, agent_bin=agent_bin)
        agent_cfg = system.agent_cfg.read_text()
        head = agent_cfg[: agent_cfg.index("sources:")]
        tail = agent_cfg[agent_cfg.index("logging:") :]
        system.agent_cfg.write_text(head + sources_yaml(system.log, enabled) + tail)
        print(f"sources: {', '.join(s for s in ALL_SOURCES if s in enabled)}")
        system.start_collector()
        system.start_agent()
        try:
            assert system.agent is not None
            pid = system.agent.pid
            print(f"agent pid {pid}; settling {ns.settle_s:.0f} s (baselines, inventory) ...")
            time.sleep(ns.settle_s)  # the agent's start-up work is not part of the steady state
            quiet = measure(pid, ns.quiet_s)
            print(quiet.line(f"quiet ({ns.quiet_s:.0f} s)"))
            threads = len(list(Path(f"/proc/{pid}/task").iterdir()))
            where = ", ".join(f"{k} {v / MB:.1f}" for k, v in largest_mappings(pid))
            print(f"threads {threads}; largest mappings (MB): {where}")
            writer = LineWriter(system.log, ns.rate)
            load = measure(pid, ns.load_s, writer)
            print(load.line(f"load {ns.rate} auth lines/s ({ns.load_s:.0f} s)"))
            wait_for(
                lambda: count_lines(system) >= writer.written, 120, "every line at the collector"
            )
            print(f"lines written {writer.written}, stored at the collector {count_lines(system)}")
        finally:
            system.stop()
    rss = statistics.median(quiet.rss + load.rss) / MB
    print(f"target steady RSS <= {TARGET_RSS_MB} MB: {rss:.1f} MB, {verdict(rss, TARGET_RSS_MB)}")
    print(
        f"target quiet CPU <= {TARGET_QUIET_PCT}%: {quiet.cpu_pct:.2f}%, "
        f"{verdict(quiet.cpu_pct, TARGET_QUIET_PCT)}"
    )
    print(
        f"target CPU at {ns.rate} lines/s <= {TARGET_LOAD_PCT}%: {load.cpu_pct:.2f}%, "
        f"{verdict(load.cpu_pct, TARGET_LOAD_PCT)}"
    )
    return 0


def count_lines(system: System) -> int:
    counts = {}
    for ev in system.stored_events():
        if ev.WhichOneof("payload") == "auth" and ev.auth.user.startswith("u"):
            counts[ev.auth.user] = 1
    return len(counts)


if __name__ == "__main__":
    raise SystemExit(main())
