"""InventorySource: when it sends, what it checkpoints, and its run against this machine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.sources.base import SourceContext
from agent.sources.inventory import InventoryConfig, InventorySource
from agent.sources.inventory.collect import HostRoots, Uname
from agent.sources.inventory.source import CHECKPOINT_KEY
from canhgac.strictmodel import ValidationError
from tests.agent.sources.harness import CLOCK_NS, CollectingSink, running, wait_until

from .test_inventory_collect import DPKG_STATUS, fixed_ipv4, make_host, write


def ctx(checkpoints: dict[str, str] | None = None) -> SourceContext:
    return SourceContext(
        agent_id="agent-1", host="web1", clock_ns=lambda: CLOCK_NS, checkpoints=checkpoints or {}
    )


def fixture_source(roots: HostRoots, **cfg: object) -> InventorySource:
    return InventorySource(
        InventoryConfig.model_validate(cfg),
        roots=roots,
        uname=lambda: Uname("6.1.0-18-amd64", "x86_64"),
        hostname=lambda: "web1",
        ipv4_getter=fixed_ipv4,
        watch_interval=0.02,
    )


def bump_mtime(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))


async def test_sends_at_start_then_only_on_change(tmp_path: Path) -> None:
    roots = make_host(tmp_path)
    src, sink = fixture_source(roots), CollectingSink()
    async with running(src, sink):
        await wait_until(lambda: len(sink.events) == 1)
        (first,) = sink.events
        assert (first.category, first.type, first.action, first.source) == (
            "host",
            "info",
            "inventory",
            "inventory",
        )
        assert (first.agent_id, first.host, first.time_ns) == ("agent-1", "web1", CLOCK_NS)
        assert first.inventory.hostname == "web1"
        digest = sink.checkpoints[CHECKPOINT_KEY]

        # passwd touched but unchanged: collected again, nothing sent.
        bump_mtime(roots.etc / "passwd")
        await wait_until(lambda: src.collections == 2)
        assert len(sink.events) == 1

        # A package is installed: dpkg rewrites its status file -> a new inventory.
        added = "Package: curl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 7.88\n"
        write(roots.var_lib / "dpkg/status", DPKG_STATUS + "\n" + added)
        bump_mtime(roots.var_lib / "dpkg/status")
        await wait_until(lambda: len(sink.events) == 2)
        assert "curl" in {k.name for k in sink.events[1].inventory.packages}
        assert sink.checkpoints[CHECKPOINT_KEY] != digest
        assert src.health.state == "running"
        assert src.health.mode == "netlink"
        assert src.health.events == 2
        assert src.health.unparsed == {"passwd_bad_line": 2, "dpkg_bad_stanza": 2}


@pytest.mark.parametrize(("send_at_start", "expected"), [(False, 0), (True, 1)])
async def test_restart_with_unchanged_host(
    tmp_path: Path, send_at_start: bool, expected: int
) -> None:
    roots = make_host(tmp_path)
    sink = CollectingSink()
    async with running(fixture_source(roots), sink):
        await wait_until(lambda: len(sink.events) == 1)
    saved = dict(sink.checkpoints)

    src, again = fixture_source(roots, send_at_start=send_at_start), CollectingSink()
    async with running(src, again, ctx(saved)):
        await wait_until(lambda: src.collections == 1)
        await wait_until(lambda: len(again.events) == expected)
    assert len(again.events) == expected


async def test_restart_with_changed_host_sends_even_without_send_at_start(tmp_path: Path) -> None:
    roots = make_host(tmp_path)
    src, sink = fixture_source(roots, send_at_start=False), CollectingSink()
    async with running(src, sink, ctx({CHECKPOINT_KEY: "digest-of-another-inventory"})):
        await wait_until(lambda: len(sink.events) == 1)


def test_config_ranges() -> None:
    assert InventoryConfig().check_interval_s == 600
    assert InventoryConfig().max_packages == 20_000
    for bad in ({"check_interval_s": 10}, {"max_packages": -1}, {"unknown": True}):
        with pytest.raises(ValidationError):
            InventoryConfig.model_validate(bad)


async def test_real_host_run() -> None:
    src, sink = InventorySource(), CollectingSink()
    async with running(src, sink):
        await wait_until(lambda: len(sink.events) == 1)
    inv = sink.events[0].inventory
    assert inv.kernel == os.uname().release
    lo = next(i for i in inv.interfaces if i.name == "lo")
    assert "127.0.0.1" in lo.addresses
    assert sink.events[0].ByteSize() < 1024 * 1024
