"""Building one InventoryEvent payload from the host, and its change digest."""

from __future__ import annotations

import hashlib
import os
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import NamedTuple

from canhgac.v1 import events_pb2

from .hostinfo import boot_time_ns, local_users, memory_bytes, os_name_version
from .interfaces import (
    Ipv4Getter,
    fib_trie_ipv4_addresses,
    interfaces,
    ipv6_addresses,
    netlink_ipv4_addresses,
)
from .packages import CommandRunner, installed_packages

# The whole Event must stay far below the 1 MiB a spool record / gRPC message may hold.
MAX_PAYLOAD_BYTES = 512 * 1024


class Uname(NamedTuple):
    release: str
    machine: str


def os_uname() -> Uname:
    u = os.uname()
    return Uname(u.release, u.machine)


@dataclass(frozen=True)
class HostRoots:
    """Where the collector reads the host from (fixture trees in tests)."""

    etc: Path = Path("/etc")
    usr_lib: Path = Path("/usr/lib")
    proc: Path = Path("/proc")
    sys: Path = Path("/sys")
    var_lib: Path = Path("/var/lib")


@dataclass
class Inventory:
    payload: events_pb2.InventoryEvent
    digest: str
    # Reason -> count of things read but left out (health.unparsed).
    problems: dict[str, int] = field(default_factory=dict)
    ipv4_method: str = "netlink"


def digest(payload: events_pb2.InventoryEvent) -> str:
    """sha256 of the content that defines "changed"; boot time is not part of it (a reboot
    alone does not change the asset, and btime jitters by a second on some kernels)."""
    copy = events_pb2.InventoryEvent()
    copy.CopyFrom(payload)
    copy.boot_time_ns = 0
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()


class InventoryCollector:
    """Reads the inventory; every list is sorted so an unchanged host gives the same digest.

    Contract: `collect()` never raises for a missing or unreadable file (the field stays
    empty); what it read but could not use is counted in `Inventory.problems`. Packages are
    capped at `max_packages` and, beyond that, at MAX_PAYLOAD_BYTES of payload; packages left
    out are counted as "packages_truncated". Blocking: call it from a thread.
    """

    def __init__(
        self,
        roots: HostRoots,
        *,
        max_packages: int,
        uname: Callable[[], Uname] = os_uname,
        hostname: Callable[[], str] = socket.gethostname,
        ipv4_getter: Ipv4Getter = netlink_ipv4_addresses,
        rpm_runner: CommandRunner | None = None,
    ) -> None:
        self.roots = roots
        self._max_packages = max_packages
        self._uname = uname
        self._hostname = hostname
        self._ipv4 = ipv4_getter
        self._fallback_ipv4: Ipv4Getter = partial(fib_trie_ipv4_addresses, roots.proc)
        self._rpm_runner = rpm_runner

    def collect(self) -> Inventory:
        r = self.roots
        problems: dict[str, int] = {}
        os_name, os_version = os_name_version(r.etc, r.usr_lib)
        uname = self._uname()
        payload = events_pb2.InventoryEvent(
            hostname=self._hostname(),
            os_name=os_name,
            os_version=os_version,
            kernel=uname.release,
            architecture=uname.machine,
            memory_bytes=memory_bytes(r.proc),
            cpu_count=os.cpu_count() or 0,
            boot_time_ns=boot_time_ns(r.proc),
        )
        ipv4, method = self._ipv4_addresses(problems)
        unplaced = ipv4.pop("", [])
        if unplaced:
            problems["ipv4_without_interface"] = len(unplaced)
        payload.interfaces.extend(interfaces(r.sys, ipv4, ipv6_addresses(r.proc)))
        users = local_users(r.etc / "passwd")
        payload.users.extend(users.users)
        if users.bad_lines:
            problems["passwd_bad_line"] = users.bad_lines
        packages = installed_packages(r.var_lib, self._rpm_runner)
        for reason, n in packages.problems.items():
            problems[reason] = problems.get(reason, 0) + n
        kept = self._fit(payload, packages.packages)
        if kept < len(packages.packages):
            problems["packages_truncated"] = len(packages.packages) - kept
        return Inventory(payload, digest(payload), problems, method)

    def _ipv4_addresses(self, problems: dict[str, int]) -> tuple[dict[str, list[str]], str]:
        try:
            return self._ipv4(), "netlink"
        except (OSError, ValueError, struct.error):  # refused, timed out, or a reply we misread
            problems["ipv4_netlink_failed"] = 1
        try:
            return self._fallback_ipv4(), "fib_trie"
        except (OSError, ValueError):
            problems["ipv4_unreadable"] = 1
            return {}, "none"

    def _fit(
        self, payload: events_pb2.InventoryEvent, packages: list[events_pb2.InstalledPackage]
    ) -> int:
        budget = MAX_PAYLOAD_BYTES - payload.ByteSize()
        kept = 0
        for package in packages[: self._max_packages]:
            budget -= package.ByteSize() + 3  # field tag and length prefix
            if budget < 0:
                break
            kept += 1
        payload.packages.extend(packages[:kept])
        return kept
