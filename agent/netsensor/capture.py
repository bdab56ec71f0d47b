"""Live capture: an AF_PACKET socket with the BPF filter applied in the kernel.

Decisions, so that they are not rediscovered:

* `SOCK_RAW` + `ETH_P_ALL`, bound to the interface; `any` leaves the socket unbound, so frames
  of every interface arrive, each with its own link header (Ethernet on Ethernet-like devices
  and loopback, none on tun/WireGuard/PPP: those are handed on as `LINKTYPE_RAW`, told apart
  per frame by the network-header offset in the kernel's PACKET_AUXDATA).
* Both directions are kept: a server's own replies matter to flows. The one exception is the
  loopback device, where the kernel shows every packet twice (once outgoing, once incoming):
  its outgoing copies are dropped in the kernel.
* The tcpdump-syntax filter is compiled by libpcap through scapy's `compile_filter` (ctypes,
  no Python libpcap binding needed; libpcap ships with tcpdump) and, failing that, by
  `tcpdump -ddd -r <empty pcap of the link type>`, which needs no interface and no root.
  It is compiled twice, for Ethernet and for raw IP, behind a small dispatcher on the frame's
  hardware type (classic BPF ancillary loads), so `any` filters correctly on every device.
  A filter that cannot apply to raw IP (`ether host ...`) passes no raw-IP frames.
* The filter is attached before bind (a drop-all program first, then the socket is drained,
  then the real one) so no unfiltered frame slips in between.
* Kernel timestamps (SO_TIMESTAMPNS) and the wire length (PACKET_AUXDATA) come as control
  messages; kernel drops come from PACKET_STATISTICS, which resets on every read and is
  therefore accumulated here.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import select
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from agent.netsensor.config import NetSensorConfig
from agent.netsensor.packet import LINKTYPE_ETHERNET, LINKTYPE_RAW, Frame
from canhgac.errors import ConfigError, SourceUnavailableError

ETH_P_ALL: Final = 0x0003
SOL_PACKET: Final = 263
PACKET_AUXDATA: Final = 8
PACKET_STATISTICS: Final = 6
PACKET_OUTGOING: Final = 4
SO_ATTACH_FILTER: Final = 26
SO_TIMESTAMPNS: Final = 35
SO_RCVBUFFORCE: Final = 33
ARPHRD_ETHER: Final = 1
ARPHRD_LOOPBACK: Final = 772
# Classic BPF ancillary loads (linux/filter.h): SKF_AD_OFF + SKF_AD_PKTTYPE / SKF_AD_HATYPE.
_SKF_AD_OFF: Final = -0x1000 & 0xFFFFFFFF
_LD_PKTTYPE: Final = (0x20, 0, 0, _SKF_AD_OFF + 4)  # BPF_LD|BPF_W|BPF_ABS
_LD_HATYPE: Final = (0x20, 0, 0, _SKF_AD_OFF + 28)
_BPF_JEQ_K: Final = 0x15
_BPF_JA: Final = 0x05
_BPF_RET_K: Final = 0x06
_AUXDATA = struct.Struct("IIIHHHH")  # struct tpacket_auxdata
_TIMESPEC = struct.Struct("qq")
_TPACKET_STATS = struct.Struct("II")
_ANC_SIZE = socket.CMSG_SPACE(_AUXDATA.size) + socket.CMSG_SPACE(_TIMESPEC.size)

CAP_NET_RAW_MESSAGE: Final = (
    "network sensor needs CAP_NET_RAW: run as root or grant the capability "
    "(AmbientCapabilities=CAP_NET_RAW in the systemd unit)"
)

Insn = tuple[int, int, int, int]  # code, jt, jf, k (struct sock_filter)


@dataclass
class CaptureStats:
    """Frames delivered to us and dropped by the kernel (receive buffer full), since open."""

    received: int = 0
    kernel_drops: int = 0


class FrameCapture(Protocol):
    """A live frame source. `read` blocks at most `timeout_s` and returns at most `max_frames`."""

    description: str

    def open(self) -> None: ...
    def read(self, max_frames: int, timeout_s: float) -> list[Frame]: ...
    def stats(self) -> CaptureStats: ...
    def close(self) -> None: ...


def compile_filter(expr: str, linktype: int, snaplen: int) -> list[Insn]:
    """The classic BPF program for a tcpdump-syntax filter; "" accepts everything.

    Accepted frames are cut to `snaplen` bytes by the kernel. Raises ConfigError when the
    expression does not compile for this link type.
    """
    if not expr.strip():
        return [(_BPF_RET_K, 0, 0, snaplen)]
    try:
        insns = _compile_with_scapy(expr, linktype)
    except (ImportError, OSError):
        insns = _compile_with_tcpdump(expr, linktype)
    return [(c, jt, jf, snaplen if c == _BPF_RET_K and k else k) for c, jt, jf, k in insns]


def _compile_with_scapy(expr: str, linktype: int) -> list[Insn]:
    from scapy.arch.common import compile_filter as scapy_compile
    from scapy.error import Scapy_Exception

    try:
        prog = scapy_compile(expr, linktype=linktype)
    except Scapy_Exception as exc:
        raise ConfigError(str(exc), location="sources.netsensor.bpf_filter") from None
    ins = prog.bf_insns
    return [(ins[i].code, ins[i].jt, ins[i].jf, ins[i].k) for i in range(prog.bf_len)]


def _compile_with_tcpdump(expr: str, linktype: int) -> list[Insn]:
    header = struct.pack("IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
    with tempfile.NamedTemporaryFile(suffix=".pcap") as f:
        f.write(header)
        f.flush()
        try:
            out = subprocess.run(
                ["tcpdump", "-ddd", "-r", f.name, expr], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ConfigError(
                f"cannot compile the filter: neither libpcap (through scapy) nor tcpdump "
                f"is usable ({exc})",
                location="sources.netsensor.bpf_filter",
            ) from None
    if out.returncode != 0:
        raise ConfigError(out.stderr.strip(), location="sources.netsensor.bpf_filter")
    rows = out.stdout.split("\n")[1:]
    return [(a, b, c, d) for a, b, c, d in (map(int, r.split()) for r in rows if r.strip())]


def kernel_program(expr: str, snaplen: int) -> list[Insn]:
    """The program attached to the socket: drop loopback's outgoing copies, then the user's
    filter compiled for Ethernet on Ethernet-like devices and for raw IP on the others."""
    eth = compile_filter(expr, LINKTYPE_ETHERNET, snaplen)
    try:
        raw = compile_filter(expr, LINKTYPE_RAW, snaplen)
    except ConfigError:
        raw = [(_BPF_RET_K, 0, 0, 0)]  # a link-layer filter: nothing without that link layer
    head: list[Insn] = [
        _LD_PKTTYPE,
        (_BPF_JEQ_K, 0, 3, PACKET_OUTGOING),
        _LD_HATYPE,
        (_BPF_JEQ_K, 0, 1, ARPHRD_LOOPBACK),
        (_BPF_RET_K, 0, 0, 0),
        _LD_HATYPE,
        (_BPF_JEQ_K, 2, 0, ARPHRD_ETHER),
        (_BPF_JEQ_K, 1, 0, ARPHRD_LOOPBACK),
        (_BPF_JA, 0, 0, len(eth)),
    ]
    return head + eth + raw


def _sock_fprog(insns: Sequence[Insn]) -> tuple[bytes, ctypes.Array[ctypes.c_char]]:
    """struct sock_fprog for setsockopt, and the instruction array it points to (keep it
    referenced until the setsockopt call has returned)."""
    array = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in insns))
    return struct.pack("HL", len(insns), ctypes.addressof(array)), array


class AfPacketCapture:
    """Captures on one interface (or `any`) with an AF_PACKET socket; see the module notes.

    Not thread-safe: one thread opens, reads and closes it. `open()` raises
    SourceUnavailableError without CAP_NET_RAW or when the interface does not exist, and
    ConfigError when the filter does not compile.
    """

    def __init__(
        self, interface: str, bpf_filter: str = "", snaplen: int = 1600, rcvbuf: int = 16 << 20
    ) -> None:
        self.interface = interface
        self.bpf_filter = bpf_filter
        self.snaplen = snaplen
        self.rcvbuf = rcvbuf
        self.description = f"af_packet on {interface} filter '{bpf_filter}'"
        self._sock: socket.socket | None = None
        self._poll = select.poll()
        self._buf = bytearray(snaplen)
        self._view = memoryview(self._buf)
        self._stats = CaptureStats()

    def open(self) -> None:
        program = kernel_program(self.bpf_filter, self.snaplen)
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        except PermissionError:
            raise SourceUnavailableError(CAP_NET_RAW_MESSAGE) from None
        try:
            self._configure(sock, program)
        except BaseException:  # whatever failed (cancellation too): no socket leaks; re-raised
            sock.close()
            raise
        self._sock = sock
        self._poll.register(sock, select.POLLIN)

    def _configure(self, sock: socket.socket, program: list[Insn]) -> None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, self.rcvbuf)
        except PermissionError:  # without CAP_NET_ADMIN: capped by net.core.rmem_max
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        self._attach([(_BPF_RET_K, 0, 0, 0)], sock)
        if self.interface != "any":
            try:
                sock.bind((self.interface, ETH_P_ALL))
            except OSError as exc:
                if exc.errno in (errno.ENODEV, errno.ENXIO):
                    raise SourceUnavailableError(
                        f"network sensor: no interface {self.interface!r} on this host"
                    ) from None
                raise
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:  # what arrived before the drop-all program was attached
                sock.recv(1)
        self._attach(program, sock)
        self._read_kernel_stats(sock)  # counts so far belong to the drained frames

    @staticmethod
    def _attach(program: list[Insn], sock: socket.socket) -> None:
        fprog, _keep = _sock_fprog(program)
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)

    def read(self, max_frames: int, timeout_s: float) -> list[Frame]:
        sock = self._sock
        if sock is None:
            raise RuntimeError("capture is not open")
        frames: list[Frame] = []
        if not self._poll.poll(int(timeout_s * 1000)):
            return frames
        view, snaplen = self._view, self.snaplen
        for _ in range(max_frames):
            try:
                n, anc, _flags, _addr = sock.recvmsg_into([view], _ANC_SIZE)
            except BlockingIOError:
                break
            when = 0
            wire = n
            linktype = LINKTYPE_ETHERNET
            for level, kind, data in anc:
                if level == SOL_PACKET and kind == PACKET_AUXDATA:
                    _st, wire, _snap, _mac, net, _tci, _tpid = _AUXDATA.unpack_from(data)
                    if net == 0:
                        linktype = LINKTYPE_RAW
                elif level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = _TIMESPEC.unpack_from(data)
                    when = sec * 1_000_000_000 + nsec
            frames.append(
                Frame(bytes(view[: min(n, snaplen)]), when or time.time_ns(), linktype, wire)
            )
        self._stats.received += len(frames)
        return frames

    def _read_kernel_stats(self, sock: socket.socket) -> tuple[int, int]:
        raw = sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, _TPACKET_STATS.size)
        packets, drops = _TPACKET_STATS.unpack(raw)
        return packets, drops

    def stats(self) -> CaptureStats:
        """Counts since open. The kernel's counters reset when read; they are summed here."""
        if self._sock is not None:
            _packets, drops = self._read_kernel_stats(self._sock)
            self._stats.kernel_drops += drops
        return CaptureStats(self._stats.received, self._stats.kernel_drops)

    def close(self) -> None:
        if self._sock is not None:
            self.stats()
            self._poll.unregister(self._sock)
            self._sock.close()
            self._sock = None


def read_host_addresses(interface: str = "any") -> frozenset[str]:
    """The addresses of this host's interfaces (or of one), from `ip -j addr`; empty if unknown.

    Runs in the caller's network namespace. Used to tell a flow's direction.
    """
    cmd = ["ip", "-j", "addr", "show"] + ([] if interface == "any" else ["dev", interface])
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return parse_ip_addr_json(out.stdout)


def parse_ip_addr_json(text: str) -> frozenset[str]:
    import json

    try:
        links = json.loads(text)
    except ValueError:
        return frozenset()
    found = set()
    for link in links if isinstance(links, list) else []:
        for info in link.get("addr_info", []) if isinstance(link, dict) else []:
            local = info.get("local") if isinstance(info, dict) else None
            if isinstance(local, str):
                found.add(local)
    return frozenset(found)


def af_packet_capture(config: NetSensorConfig) -> FrameCapture:
    """The capture a NetSensorSource uses unless told otherwise."""
    return AfPacketCapture(
        config.interface, config.bpf_filter, config.snaplen, config.receive_buffer_bytes
    )
