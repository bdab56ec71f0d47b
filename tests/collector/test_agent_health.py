"""Agent health metrics: states, spool depths and reported drops from the real registry."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client import CollectorRegistry

from canhgac.v1 import events_pb2
from collector.agent_health import AgentHealthMetrics, AgentHealthWorker, summarise
from collector.storage.base import AgentRecord
from collector.storage.sqlite import SqliteStore
from collector.storage.worker import StoreWorker
from tests.agent.sources.harness import wait_until

NS = 1_000_000_000
NOW = 1_800_000_000 * NS


def status(spool: int, drops: list[tuple[str, str, int]]) -> bytes:
    s = events_pb2.AgentStatus(spool_events=spool, spool_bytes=spool * 100)
    for source, reason, n in drops:
        s.drops.add(source=source, reason=reason, count=n)
    return s.SerializeToString()


def test_summary_counts_states_spools_and_drops() -> None:
    agents = [
        AgentRecord("a", last_seen_ns=NOW - 10 * NS, status=status(5, [("authlog", "rate", 3)])),
        AgentRecord(
            "b", last_seen_ns=NOW - 3600 * NS, status=status(40, [("authlog:x", "rate", 2)])
        ),
        AgentRecord("c", last_seen_ns=NOW, enrollment_status="revoked", status=status(999, [])),
        AgentRecord("d", enrollment_status="enrolled"),
        AgentRecord("e", last_seen_ns=NOW, status=b"\xff\xff not a protobuf"),
    ]
    s = summarise(agents, NOW, down_after_s=300)
    assert s.states == {"up": 2, "down": 1, "revoked": 1, "never_seen": 1}
    # The revoked agent's spool is not counted; a down agent's last report is.
    assert (s.spool_events_sum, s.spool_events_max) == (45, 40)
    assert (s.spool_bytes_sum, s.spool_bytes_max) == (4500, 4000)
    assert s.drops == {("authlog", "rate"): 5}
    assert s.undecodable == 1


def test_hostile_labels_are_folded() -> None:
    agents = [
        AgentRecord(
            "a",
            last_seen_ns=NOW,
            status=status(0, [("x" * 200, "a b{c}", 1), ("fim", "memory", 2)]),
        )
    ]
    s = summarise(agents, NOW, down_after_s=60)
    assert s.drops == {("other", "other"): 1, ("fim", "memory"): 2}


def test_worker_publishes_from_a_real_store(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "c.db")
    store.migrate()
    worker = StoreWorker(store)
    registry = CollectorRegistry()
    now = [NOW]
    health = AgentHealthWorker(
        worker, AgentHealthMetrics.create(registry), down_after_s=300, clock_ns=lambda: now[0]
    )

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    try:
        store.upsert_agent(
            AgentRecord("a", last_seen_ns=NOW, status=status(7, [("journald", "rate", 4)]))
        )
        asyncio.run(health.run_once())
        assert value("canhgac_collector_agents", state="up") == 1
        assert value("canhgac_collector_agents", state="down") == 0
        assert value("canhgac_collector_agent_spool_events", stat="max") == 7
        assert (
            value("canhgac_collector_agent_drops_reported", source="journald", reason="rate") == 4
        )

        # An hour later the agent has gone quiet, and its new heartbeat reported no drops.
        now[0] = NOW + 3600 * NS
        store.upsert_agent(AgentRecord("a", last_seen_ns=NOW, status=status(0, [])))
        asyncio.run(health.run_once())
        assert value("canhgac_collector_agents", state="up") == 0
        assert value("canhgac_collector_agents", state="down") == 1
        assert (
            value("canhgac_collector_agent_drops_reported", source="journald", reason="rate") == 0
        )
    finally:
        worker.close()


def test_run_stops_on_its_event(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "c.db")
    store.migrate()
    worker = StoreWorker(store)
    health = AgentHealthWorker(
        worker, AgentHealthMetrics.create(CollectorRegistry()), down_after_s=300
    )

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(health.run(stop, interval_s=3600))
        await wait_until(lambda: health.latest is not None)
        stop.set()
        await asyncio.wait_for(task, timeout=5)

    try:
        asyncio.run(main())
    finally:
        worker.close()
