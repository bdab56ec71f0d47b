"""Spool replay: how fast the agent's spool hands back a backlog after an outage.

Fills a spool on disk with N realistic auth events (as sources would while the collector is
down), then drains it the way the shipper does after reconnecting: assign a batch, read it,
acknowledge it. Prints append and replay rates; the target (issue 3) is replay ≥ 50,000
events/s. The network and the collector are not part of this figure: bench/ingest.py measures
those.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import synthetic_event  # bench/ is not a package

from agent.spool import SqliteSpool


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--events", type=int, default=300_000)
    p.add_argument("--batch", type=int, default=500)
    ns = p.parse_args()
    template = [synthetic_event("bench-agent", i) for i in range(ns.batch)]
    with tempfile.TemporaryDirectory(prefix="canhgac-spool-") as tmp:
        spool = SqliteSpool(Path(tmp) / "spool.db", max_bytes=4 * 1024**3)
        start = time.perf_counter()
        for i in range(0, ns.events, ns.batch):
            now = time.time_ns()
            for k, ev in enumerate(template):
                ev.time_ns = now + k
                ev.id = f"ev-{i + k:012d}"
            spool.append(template, None)
        fill = time.perf_counter() - start
        start = time.perf_counter()
        replayed = 0
        while (batch := spool.next_batch(ns.batch, 4 * 1024 * 1024)) is not None:
            replayed += len(batch.events)
            spool.ack(batch.seq)
        drain = time.perf_counter() - start
        spool.close()
    print(f"events={ns.events} batch={ns.batch}")
    print(f"append (sources -> spool, durable): {ns.events / fill:,.0f} events/s")
    print(f"replay (spool -> batches, acked):   {replayed / drain:,.0f} events/s")
    verdict = "meets" if replayed / drain >= 50_000 else "BELOW"
    print(f"target 50,000 events/s replay: {verdict}")
    return 0 if replayed == ns.events else 1


if __name__ == "__main__":
    sys.exit(main())
