"""Evidence export over a large period: time and peak memory (issue 10).

Generates `--events` events (default 1,000,000) for four agents of one system over 30 days
into a real SQLite store (in group-commit batches, as ingest writes them), then exports the
period twice, without and with the raw events, each in a fresh child process so that its peak
RSS (VmHWM) is the export's own and not the generator's. Bounded memory means the peak
does not grow with the number of events: above the child's baseline after imports it holds
the SQLite page cache (capped at 64 MiB by the store's PRAGMA cache_size), the rule library
loaded for the golden tests, and pages of at most 5,000 events.

Target: exporting 1,000,000 stored events runs in bounded memory (streaming).

    .venv/bin/python bench/evidence.py --events 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from canhgac.v1 import events_pb2
from collector.config import CollectorConfig, DetectionConfig, DossiersConfig
from collector.dossiers.clock import VN_TZ
from collector.dossiers.model import Assets, InformationSystem
from collector.evidence.export import export_bundle
from collector.storage.base import AgentRecord, BatchToStore
from collector.storage.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parent.parent
START = dt.datetime(2026, 10, 1, tzinfo=VN_TZ)
END = START + dt.timedelta(days=30)
AGENTS = ("a1", "a2", "a3", "a4")
BATCH = 5000
SOURCES = (("authlog", "authentication"), ("process", "process"), ("fim", "file"))


def _rss_mib() -> float:
    """Peak RSS of this process. VmHWM rather than ru_maxrss, which Linux carries over from
    the forking parent across exec, so a child would report the generator's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def generate(db: Path, total: int) -> None:
    store = SqliteStore(db)
    store.migrate()
    store.upsert_system(
        InformationSystem.model_validate(
            {
                "id": "dvc",
                "name": "Cổng dịch vụ công",
                "owner": {"name": "UBND tỉnh"},
                "operator": {"name": "Sở KH&CN"},
                "system_type": "citizen_business_service",
                "info_classes": ["personal_basic"],
                "proposed_level": 3,
            }
        )
    )
    store.set_assets("dvc", Assets(agents=AGENTS))
    for a in AGENTS:
        store.upsert_agent(AgentRecord(agent_id=a, hostname=f"host-{a}"))
    step = (END - START).total_seconds() * 1e9 / total
    t0 = int(START.timestamp()) * 10**9
    began = time.perf_counter()
    seqs = dict.fromkeys(AGENTS, 0)
    for first in range(0, total, BATCH * len(AGENTS)):
        batches = []
        for k, agent in enumerate(AGENTS):
            seqs[agent] += 1
            events = []
            for i in range(first + k * BATCH, min(first + (k + 1) * BATCH, total)):
                source, category = SOURCES[i % len(SOURCES)]
                events.append(
                    events_pb2.Event(
                        id=f"e{i}",
                        time_ns=t0 + int(i * step),
                        agent_id=agent,
                        host=f"host-{agent}",
                        category=category,
                        source=source,
                        action="bench",
                        original="Nov  1 10:00:00 host sshd[4242]: Failed password for x",
                    )
                )
            if events:
                batches.append(BatchToStore(agent, seqs[agent], events, t0))
        store.store_batches(batches)
    store.close()
    took = time.perf_counter() - began
    print(
        f"generated {total:,} events in {took:.1f} s ({total / took:,.0f}/s), "
        f"generator peak RSS {_rss_mib():.0f} MiB"
    )


def export_child(db: Path, out: Path, raw: bool) -> None:
    baseline = _rss_mib()
    store = SqliteStore(db)
    config = CollectorConfig(
        state_dir=out.parent,
        detection=DetectionConfig(rule_paths=[ROOT / "rules"]),
        dossiers=DossiersConfig(regime_dir=ROOT / "rules" / "regimes"),
    )
    began = time.perf_counter()
    result = export_bundle(
        store,
        "dvc",
        START,
        END,
        out,
        config=config,
        key=Ed25519PrivateKey.generate(),
        raw_events=raw,
        now=lambda: END + dt.timedelta(days=1),
    )
    took = time.perf_counter() - began
    store.close()
    size = out.stat().st_size / 2**20
    print(
        f"export raw_events={raw}: {result.events:,} events in {took:.1f} s "
        f"({result.events / took:,.0f}/s), bundle {size:.1f} MiB, peak RSS {_rss_mib():.0f} "
        f"MiB (baseline after imports {baseline:.0f} MiB)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--child", nargs=3, metavar=("DB", "OUT", "RAW"), help=argparse.SUPPRESS)
    ns = p.parse_args()
    if ns.child:
        export_child(Path(ns.child[0]), Path(ns.child[1]), ns.child[2] == "1")
        return
    with tempfile.TemporaryDirectory(prefix="canhgac-bench-evidence-") as work:
        db = Path(work) / "c.db"
        generate(db, ns.events)
        for raw in ("0", "1"):
            out = Path(work) / f"bundle-{raw}.tar"
            child = [sys.executable, __file__, "--child", str(db), str(out), raw]
            subprocess.run(child, check=True)


if __name__ == "__main__":
    main()
