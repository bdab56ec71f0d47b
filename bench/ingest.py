"""Start a collector in a temporary directory and measure ingest with the load generator.

Prints the load generator's figures (events/s stored and acknowledged; p50/p99 latency from
event creation to stored) for the collector's embedded default (SQLite, TLS).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
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
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="canhgac-bench-") as tmp:
        state = Path(tmp)
        storage = (
            f"{{kind: postgres, postgres_dsn: '{ns.postgres_dsn}'}}"
            if ns.storage == "postgres"
            else "{kind: sqlite}"
        )
        cfg = state / "collector.yaml"
        cfg.write_text(
            f"""name: bench
state_dir: {state / "collector"}
ingest: {{listen: "127.0.0.1:{port}", max_unacked_batches: 64}}
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
                time.sleep(0.1)
            args = [
                sys.executable,
                str(ROOT / "bench" / "loadgen.py"),
                "--address",
                f"localhost:{port}",
                "--ca",
                str(ca),
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
            return subprocess.call(args)
        finally:
            collector.send_signal(signal.SIGTERM)
            collector.wait(timeout=30)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


if __name__ == "__main__":
    sys.exit(main())
