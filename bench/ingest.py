"""Start a collector in a temporary directory and measure ingest with the load generator.

Prints the load generator's figures (events/s stored and acknowledged; p50/p99 latency from
event creation to stored) for the collector's embedded default (SQLite, TLS).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--events", type=int, default=300_000)
    p.add_argument("--agents", type=int, default=4)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--window", type=int, default=8)
    p.add_argument("--rate", type=float, default=0)
    p.add_argument("--storage", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--postgres-dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    ns = p.parse_args()
    if ns.storage == "postgres":
        with _fresh_schema(ns.postgres_dsn) as dsn:
            return run(ns, f"{{kind: postgres, postgres_dsn: '{dsn}'}}")
    return run(ns, "{kind: sqlite}")


@contextlib.contextmanager
def _fresh_schema(dsn: str) -> Iterator[str]:
    """A schema of its own for this run, dropped afterwards, so old tables never interfere."""
    import psycopg

    schema = f"canhgac_bench_{os.getpid()}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in dsn else "?"
    try:
        yield f"{dsn}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def run(ns: argparse.Namespace, storage: str) -> int:
    port, enroll_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="canhgac-bench-") as tmp:
        state = Path(tmp)
        cfg = state / "collector.yaml"
        cfg.write_text(
            f"""name: bench
state_dir: {state / "collector"}
ingest: {{listen: "127.0.0.1:{port}", enroll_listen: "127.0.0.1:{enroll_port}",
         max_unacked_batches: 64, max_events_per_second: 0}}
tls: {{mode: auto, server_names: [localhost]}}
storage: {storage}
detection: {{rule_paths: ["{ROOT / "rules"}"]}}
http: {{enabled: false}}
logging: {{level: warning}}
"""
        )
        collector = subprocess.Popen([BIN / "canhgac-collector", "run", "--config", cfg])
        try:
            ca = state / "collector" / "pki" / "ca.crt"
            deadline = time.monotonic() + 30
            while not (ca.exists() and _listening(port)):
                if time.monotonic() > deadline or collector.poll() is not None:
                    print("collector did not start", file=sys.stderr)
                    return 1
                time.sleep(0.1)  # polling another process's start, bounded above
            tokens = state / "tokens.txt"
            tokens.write_text(_tokens(cfg, ns.agents))
            args = [
                sys.executable,
                str(ROOT / "bench" / "loadgen.py"),
                "--address",
                f"localhost:{port}",
                "--ca",
                str(ca),
                "--tokens",
                str(tokens),
                "--enroll",
                f"localhost:{enroll_port}",
                "--events",
                str(ns.events),
                "--agents",
                str(ns.agents),
                "--batch",
                str(ns.batch),
                "--window",
                str(ns.window),
                "--rate",
                str(ns.rate),
                "--target-eps",
                "100000",
            ]
            print(f"storage={ns.storage} cores={os.cpu_count()}")
            children = _children(collector.pid)
            cpu_before, wall_before = _cpu_seconds(collector.pid), time.perf_counter()
            child_before = sum(_cpu_seconds(c) for c in children)
            gen_before = resource.getrusage(resource.RUSAGE_CHILDREN)
            rc = subprocess.call(args)
            gen_after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = _cpu_seconds(collector.pid) - cpu_before
            child = sum(_cpu_seconds(c) for c in children) - child_before
            gen = (gen_after.ru_utime + gen_after.ru_stime) - (
                gen_before.ru_utime + gen_before.ru_stime
            )
            wall = time.perf_counter() - wall_before
            print(
                f"collector CPU: {cpu:.2f} s over {wall:.2f} s wall "
                f"({100 * cpu / wall:.0f}% of one core; {ns.events / cpu:,.0f} events per "
                "collector CPU-second)"
            )
            print(
                f"detection child CPU: {child:.2f} s ({100 * child / wall:.0f}% of one core); "
                f"load generator CPU: {gen:.2f} s ({100 * gen / wall:.0f}% of one core)"
            )
            return rc
        finally:
            collector.send_signal(signal.SIGTERM)
            collector.wait(timeout=30)


def _cpu_seconds(pid: int) -> float:
    """User+system CPU time of a process (and its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tokens(cfg: Path, agents: int) -> str:
    """One enrollment token per simulated agent, made with the collector's CLI."""
    made = []
    for i in range(agents):
        create = ["tokens", "create", "--agent-id", f"bench-{i}", "--ttl", "1h"]
        out = subprocess.run(
            [BIN / "canhgac-collector", *create, "--config", str(cfg)],
            capture_output=True,
            check=True,
        )
        made.append(out.stdout.decode().strip())
    return "\n".join(made) + "\n"


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (the collector's detection child)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


if __name__ == "__main__":
    sys.exit(main())
