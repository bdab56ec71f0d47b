"""Live capture: the kernel filter, both directions, loopback copies, stats, permissions."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from agent.netsensor.capture import (
    CAP_NET_RAW_MESSAGE,
    AfPacketCapture,
    compile_filter,
    kernel_program,
    parse_ip_addr_json,
    read_host_addresses,
)
from agent.netsensor.packet import LINKTYPE_ETHERNET, LINKTYPE_RAW, Frame
from canhgac.errors import ConfigError, SourceUnavailableError
from tests.requirements import require

from .netns import NetnsPair, in_netns, netns_pair


def test_an_empty_filter_accepts_everything_up_to_snaplen() -> None:
    assert compile_filter("", LINKTYPE_ETHERNET, 1600) == [(0x06, 0, 0, 1600)]


def test_scapy_and_tcpdump_compile_the_same_program() -> None:
    from agent.netsensor import capture

    for linktype in (LINKTYPE_ETHERNET, LINKTYPE_RAW):
        expr = "tcp port 22 or udp port 53"
        by_scapy = capture._compile_with_scapy(expr, linktype)
        assert by_scapy == capture._compile_with_tcpdump(expr, linktype)
    # Accepted frames are cut to the snaplen in the kernel.
    assert {k for c, _, _, k in compile_filter("udp", LINKTYPE_ETHERNET, 999) if c == 6} == {
        0,
        999,
    }


def test_a_bad_filter_is_a_config_error_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match="syntax error") as info:
        compile_filter("port or or", LINKTYPE_ETHERNET, 1600)
    assert info.value.location == "sources.netsensor.bpf_filter"


def test_a_link_layer_filter_passes_no_raw_ip_frames() -> None:
    prog = kernel_program("ether host 02:00:00:00:00:01", 1600)
    assert prog[-1] == (0x06, 0, 0, 0)
    # The dispatcher jumps over the whole Ethernet program to the raw-IP one.
    eth = compile_filter("ether host 02:00:00:00:00:01", LINKTYPE_ETHERNET, 1600)
    assert prog[8] == (0x05, 0, 0, len(eth))
    assert len(prog) == 9 + len(eth) + 1


def test_without_cap_net_raw_it_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> socket.socket:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(socket, "socket", refuse)
    with pytest.raises(SourceUnavailableError) as info:
        AfPacketCapture("eth0").open()
    assert str(info.value) == CAP_NET_RAW_MESSAGE


def test_host_addresses_come_from_ip_json() -> None:
    text = (
        '[{"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1"}]},'
        '{"ifname":"eth0","addr_info":[{"local":"192.0.2.5"},{"local":"2001:db8::5"}]},'
        '{"ifname":"x"}]'
    )
    assert parse_ip_addr_json(text) == {"127.0.0.1", "192.0.2.5", "2001:db8::5"}
    assert parse_ip_addr_json("not json") == frozenset()


# --- the real thing, as root, inside namespaces made here ------------------------------------


@pytest.fixture
def pair() -> Iterator[NetnsPair]:
    with netns_pair() as p:
        yield p


def send_udp(pair: NetnsPair, ns: str, dst: str, ports: list[int], count: int = 1) -> None:
    code = (
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        f"for p in {ports!r}:\n    for _ in range({count}): s.sendto(b'probe', ({dst!r}, p))\n"
    )
    out = pair.exec(ns, sys.executable, "-c", code)
    assert out.returncode == 0, out.stderr


def open_in(pair: NetnsPair, cap: AfPacketCapture) -> AfPacketCapture:
    in_netns(pair.b, cap.open)
    return cap


def drain(cap: AfPacketCapture, want: int, timeout: float = 5) -> list[Frame]:
    frames: list[Frame] = []
    deadline = time.monotonic() + timeout
    while len(frames) < want and time.monotonic() < deadline:
        frames += cap.read(1000, 0.2)
    frames += cap.read(1000, 0.3)  # and anything beyond what was expected
    return frames


@pytest.mark.integration
def test_the_kernel_filter_keeps_only_matching_frames_in_both_directions(pair: NetnsPair) -> None:
    cap = open_in(pair, AfPacketCapture(pair.b_if, "udp port 9999 or icmp", 1600, 1 << 20))
    try:
        send_udp(pair, pair.a, pair.b_ip, [9999, 8888, 9999])
        # Each probe to a closed port gets an ICMP port-unreachable back: outgoing from b.
        frames = drain(cap, 6)
        stats = cap.stats()
    finally:
        cap.close()
    udp = [f for f in frames if f.data[23] == 17]
    icmp = [f for f in frames if f.data[23] == 1]
    assert len(udp) == 2
    assert {f.data[36:38] for f in udp} == {(9999).to_bytes(2, "big")}
    assert len(icmp) == 3  # all three unreachables, b's own outbound packets
    assert all(f.linktype == LINKTYPE_ETHERNET for f in frames)
    assert all(f.wire_length == len(f.data) for f in frames)
    now = time.time_ns()
    assert all(now - 10**10 < f.time_ns <= now for f in frames)  # kernel timestamps
    assert (stats.received, stats.kernel_drops) == (5, 0)


@pytest.mark.integration
def test_snaplen_cuts_the_frame_and_keeps_the_wire_length(pair: NetnsPair) -> None:
    cap = open_in(pair, AfPacketCapture(pair.b_if, "udp", 128, 1 << 20))
    try:
        code = (
            "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
            f"s.sendto(b'x' * 1000, ({pair.b_ip!r}, 9999))"
        )
        pair.exec(pair.a, sys.executable, "-c", code)
        frames = drain(cap, 1)
    finally:
        cap.close()
    assert [(len(f.data), f.wire_length) for f in frames] == [(128, 14 + 20 + 8 + 1000)]


@pytest.mark.integration
def test_any_sees_every_interface_and_loopback_once(pair: NetnsPair) -> None:
    cap = open_in(pair, AfPacketCapture("any", "udp", 1600, 1 << 20))
    try:
        send_udp(pair, pair.b, "127.0.0.1", [7777], count=2)
        send_udp(pair, pair.a, pair.b_ip, [7778])
        frames = drain(cap, 3)
    finally:
        cap.close()
    dst_ports = sorted(int.from_bytes(f.data[36:38], "big") for f in frames)
    assert dst_ports == [7777, 7777, 7778]  # loopback's outgoing copies are dropped
    assert all(f.linktype == LINKTYPE_ETHERNET for f in frames)


@pytest.mark.integration
def test_kernel_drops_are_counted_when_the_buffer_overflows(pair: NetnsPair) -> None:
    # A tiny receive buffer (the kernel's minimum) and a burst nobody reads.
    cap = open_in(pair, AfPacketCapture(pair.b_if, "udp", 1600, 4096))
    try:
        send_udp(pair, pair.a, pair.b_ip, [9999], count=500)
        # Read until every frame is accounted for, as read or as dropped (or 5 s pass).
        frames: list[Frame] = []
        deadline = time.monotonic() + 5
        while len(frames) + cap.stats().kernel_drops < 500 and time.monotonic() < deadline:
            frames += cap.read(1000, 0.2)
        frames += cap.read(1000, 0.3)  # and anything beyond the 500 sent
        stats = cap.stats()
    finally:
        cap.close()
    assert stats.kernel_drops > 0
    assert stats.received == len(frames)
    assert len(frames) + stats.kernel_drops == 500


@pytest.mark.integration
def test_a_missing_interface_is_unavailable(pair: NetnsPair) -> None:
    cap = AfPacketCapture("nosuchif0")
    with pytest.raises(SourceUnavailableError, match="no interface 'nosuchif0'"):
        in_netns(pair.b, cap.open)


@pytest.mark.integration
def test_host_addresses_are_read_in_the_namespace(pair: NetnsPair) -> None:
    assert in_netns(pair.b, read_host_addresses) == {"127.0.0.1", pair.b_ip}
    assert in_netns(pair.b, lambda: read_host_addresses(pair.b_if)) == {pair.b_ip}


@pytest.mark.integration
def test_a_process_without_cap_net_raw_gets_the_capability_message() -> None:
    require(
        shutil.which("setpriv") is not None and os.geteuid() == 0,
        "root and setpriv (util-linux) to drop the capability",
    )
    code = (
        "from agent.netsensor.capture import AfPacketCapture\n"
        "try:\n    AfPacketCapture('lo').open()\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc)\n"
    )
    drop = ["setpriv", "--bounding-set", "-net_raw", "--inh-caps", "-net_raw"]
    out = subprocess.run(
        [*drop, sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == f"SourceUnavailableError {CAP_NET_RAW_MESSAGE}", out.stderr
