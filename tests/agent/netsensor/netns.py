"""Two network namespaces joined by a veth pair, for the capture tests (root only).

Addresses come from 10.x.y.z/30 and exist only inside the namespaces; IPv6 is switched off in
both so the kernel's own router solicitations do not add traffic the tests did not send.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from agent.netsensor.capture import AfPacketCapture
from agent.netsensor.config import NetSensorConfig
from tests.requirements import require

T = TypeVar("T")
CLONE_NEWNET = 0x40000000


@dataclass(frozen=True)
class NetnsPair:
    """`a` sends, `b` is the monitored host (the sensor captures on `b_if` inside `b`)."""

    a: str
    b: str
    a_if: str
    b_if: str
    a_ip: str
    b_ip: str

    def exec(self, ns: str, *cmd: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, timeout=timeout
        )

    def popen(self, ns: str, *cmd: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            ["ip", "netns", "exec", ns, *cmd],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def require_root() -> None:
    require(os.geteuid() == 0 and shutil.which("ip") is not None, "root and iproute2 (ip netns)")


@contextmanager
def netns_pair(prefix: str = "cgn") -> Iterator[NetnsPair]:
    """Made here, removed on exit whatever happens."""
    require_root()
    tag = secrets.token_hex(3)
    octet = secrets.randbelow(250) + 1
    pair = NetnsPair(
        a=f"{prefix}a{tag}",
        b=f"{prefix}b{tag}",
        a_if=f"vna{tag}",
        b_if=f"vnb{tag}",
        a_ip=f"10.213.{octet}.1",
        b_ip=f"10.213.{octet}.2",
    )

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    try:
        ip("netns", "add", pair.a)
        ip("netns", "add", pair.b)
        ip("link", "add", pair.a_if, "type", "veth", "peer", "name", pair.b_if)
        ip("link", "set", pair.a_if, "netns", pair.a)
        ip("link", "set", pair.b_if, "netns", pair.b)
        for ns, dev, addr in ((pair.a, pair.a_if, pair.a_ip), (pair.b, pair.b_if, pair.b_ip)):
            for key in ("all", "default", "lo"):
                pair.exec(ns, "sysctl", "-qw", f"net.ipv6.conf.{key}.disable_ipv6=1")
            ip("-n", ns, "addr", "add", f"{addr}/30", "dev", dev)
            ip("-n", ns, "link", "set", dev, "up")
            ip("-n", ns, "link", "set", "lo", "up")
        yield pair
    finally:
        for ns in (pair.a, pair.b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def in_netns(ns: str, fn: Callable[[], T]) -> T:
    """Run `fn` on a new thread that has entered network namespace `ns` (setns changes only
    the calling thread). Sockets made there stay in `ns` and may be used from any thread."""
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {ns}")
            finally:
                os.close(fd)
            result.append(fn())
        except BaseException as exc:  # noqa: BLE001  # re-raised by the caller
            error.append(exc)

    t = threading.Thread(target=target, name=f"netns-{ns}")
    t.start()
    t.join(60)
    if error:
        raise error[0]
    if not result:
        raise AssertionError(f"nothing came back from namespace {ns}")
    return result[0]


class NetnsCapture(AfPacketCapture):
    """An AfPacketCapture whose socket is made inside network namespace `ns` (the source then
    reads it from its own thread, as it would any capture)."""

    def __init__(
        self, ns: str, interface: str, bpf_filter: str, snaplen: int, receive_buffer_bytes: int
    ) -> None:
        super().__init__(interface, bpf_filter, snaplen, receive_buffer_bytes)
        self.ns = ns

    def open(self) -> None:
        in_netns(self.ns, super().open)


def netns_capture(ns: str) -> Callable[[NetSensorConfig], NetnsCapture]:
    """A capture factory for NetSensorSource that captures inside `ns`."""

    def make(c: NetSensorConfig) -> NetnsCapture:
        return NetnsCapture(ns, c.interface, c.bpf_filter, c.snaplen, c.receive_buffer_bytes)

    return make
