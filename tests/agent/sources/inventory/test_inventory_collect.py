"""InventoryCollector on fixture host trees, and on this machine."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from agent.sources.inventory.collect import HostRoots, InventoryCollector, Uname
from agent.sources.inventory.hostinfo import parse_os_release
from agent.sources.inventory.interfaces import netlink_ipv4_addresses
from agent.sources.inventory.packages import RPM_QUERY
from canhgac.fields import event_fields
from canhgac.v1 import events_pb2
from tests.requirements import require

OS_RELEASE = """\
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
# a comment
VERSION="12 (bookworm)"
ID=debian
"""
DPKG_STATUS = """\
Package: openssh-server
Status: install ok installed
Priority: optional
Installed-Size: 1804
Architecture: amd64
Version: 1:9.2p1-2+deb12u3
Conffiles:
 /etc/ssh/moduli 2a6c1fd4bbf3e4ec4a2bbc1a0d9d4abb
Description: secure shell (SSH) server, for secure access from remote machines
 This is the portable version of OpenSSH.
 .
 Package: not-a-package-line-inside-a-description

Package: telnetd
Status: deinstall ok config-files
Architecture: amd64
Version: 0.17+2.4-2

Package: base-files
Status: install ok installed
Essential: yes
Architecture: amd64
Version: 12.4+deb12u5
Description: Debian base system miscellaneous files

Package: nginx
Status: purge ok not-installed
Architecture: amd64

Package: libc6
Status: install ok unpacked
Architecture: amd64
Version: 2.36-9+deb12u4
Multi-Arch: same
Description: GNU C Library: Shared libraries
 Contains the standard libraries.

Status: install ok installed
Version: 1.0
"""
PASSWD = """\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
broken line
alice:x:1000:1000:Alice,,,:/home/alice:/bin/zsh
"""
IF_INET6 = """\
00000000000000000000000000000001 01 80 10 80       lo
fe8000000000000000fc00fffe000001 02 40 20 80     eth0
20010db8000000000000000000000042 02 40 00 00     eth0
20010db80000000012345678abcdef01 02 40 00 01     eth0
"""
FIB_TRIE = """\
Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
     +-- 192.0.2.0/24 2 0 2
        +-- 192.0.2.0/30 2 0 2
           |-- 192.0.2.0
              /24 link UNICAST
           |-- 192.0.2.2
              /32 host LOCAL
        |-- 192.0.2.255
           /32 link BROADCAST
Local:
  +-- 0.0.0.0/0 3 0 5
     +-- 127.0.0.0/8 2 0 2
           |-- 127.0.0.1
              /32 host LOCAL
     |-- 198.51.100.9
        /32 host LOCAL
"""
ROUTE = """\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
"""


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def make_host(root: Path) -> HostRoots:
    roots = HostRoots(
        etc=root / "etc",
        usr_lib=root / "usr/lib",
        proc=root / "proc",
        sys=root / "sys",
        var_lib=root / "var/lib",
    )
    write(roots.etc / "os-release", OS_RELEASE)
    write(roots.etc / "passwd", PASSWD)
    write(roots.var_lib / "dpkg/status", DPKG_STATUS)
    write(roots.proc / "meminfo", "MemTotal:        2048000 kB\nMemFree:  1 kB\n")
    write(roots.proc / "stat", "cpu  1 2 3\nbtime 1700000000\n")
    write(roots.proc / "net/if_inet6", IF_INET6)
    write(roots.proc / "net/fib_trie", FIB_TRIE)
    write(roots.proc / "net/route", ROUTE)
    for name, mac, state, flags in [
        ("lo", "00:00:00:00:00:00", "unknown", "0x9"),
        ("eth0", "02:FC:00:00:00:01", "up", "0x1003"),
        ("docker0", "02:42:ac:11:00:01", "down", "0x1003"),
    ]:
        write(roots.sys / "class/net" / name / "address", mac + "\n")
        write(roots.sys / "class/net" / name / "operstate", state + "\n")
        write(roots.sys / "class/net" / name / "flags", flags + "\n")
    return roots


def fixed_ipv4() -> dict[str, list[str]]:
    return {"lo": ["127.0.0.1"], "eth0": ["192.0.2.2", "10.0.0.2"]}


def collector(roots: HostRoots, **kw: Any) -> InventoryCollector:
    kw.setdefault("max_packages", 20_000)
    kw.setdefault("uname", lambda: Uname("6.1.0-18-amd64", "x86_64"))
    kw.setdefault("hostname", lambda: "web1")
    kw.setdefault("ipv4_getter", fixed_ipv4)
    return InventoryCollector(roots, **kw)


def test_fixture_inventory(tmp_path: Path) -> None:
    inv = collector(make_host(tmp_path)).collect()
    p = inv.payload
    assert (p.hostname, p.os_name, p.os_version) == ("web1", "Debian GNU/Linux", "12")
    assert (p.kernel, p.architecture) == ("6.1.0-18-amd64", "x86_64")
    assert (p.memory_bytes, p.boot_time_ns) == (2048000 * 1024, 1_700_000_000 * 10**9)
    assert p.cpu_count >= 1
    ifaces = {i.name: i for i in p.interfaces}
    assert list(ifaces) == ["docker0", "eth0", "lo"]
    assert ifaces["eth0"].mac == "02:fc:00:00:00:01"
    # Temporary (privacy) IPv6 address, flag 0x01, is left out.
    assert list(ifaces["eth0"].addresses) == [
        "10.0.0.2",
        "192.0.2.2",
        "2001:db8::42",
        "fe80::fc:ff:fe00:1",
    ]
    assert (ifaces["eth0"].up, ifaces["docker0"].up, ifaces["lo"].up) == (True, False, True)
    assert ifaces["lo"].mac == ""
    assert list(ifaces["lo"].addresses) == ["127.0.0.1", "::1"]
    assert [(k.name, k.version, k.architecture, k.manager) for k in p.packages] == [
        ("base-files", "12.4+deb12u5", "amd64", "dpkg"),
        ("libc6", "2.36-9+deb12u4", "amd64", "dpkg"),
        ("openssh-server", "1:9.2p1-2+deb12u3", "amd64", "dpkg"),
    ]
    assert [(u.name, u.uid, u.gid, u.home, u.shell) for u in p.users] == [
        ("root", 0, 0, "/root", "/bin/bash"),
        ("daemon", 1, 1, "/usr/sbin", "/usr/sbin/nologin"),
        ("alice", 1000, 1000, "/home/alice", "/bin/zsh"),
    ]
    assert inv.problems == {"passwd_bad_line": 1, "dpkg_bad_stanza": 1}
    event = events_pb2.Event(category="host", type="info", inventory=p)
    fields = event_fields(event)
    assert fields["host.os.kernel"] == "6.1.0-18-amd64"
    assert fields["canhgac.inventory.package_count"] == 3
    ips = fields["host.ip"]
    assert isinstance(ips, list)
    assert "192.0.2.2" in ips


def test_digest_is_stable_and_content_sensitive(tmp_path: Path) -> None:
    roots = make_host(tmp_path)
    first = collector(roots).collect().digest
    write(roots.proc / "stat", "btime 1700000001\n")  # boot time is not content
    assert collector(roots).collect().digest == first
    write(roots.var_lib / "dpkg/status", DPKG_STATUS.replace("2.36-9+deb12u4", "2.36-9+deb12u7"))
    assert collector(roots).collect().digest != first


def test_os_release_fallback_and_quoting(tmp_path: Path) -> None:
    roots = make_host(tmp_path)
    (roots.etc / "os-release").unlink()
    write(roots.usr_lib / "os-release", "NAME='Rocky Linux'\nVERSION_ID=\"9.3\"\n")
    p = collector(roots).collect().payload
    assert (p.os_name, p.os_version) == ("Rocky Linux", "9.3")
    assert parse_os_release('NAME="say \\"hi\\" \\$x"')["NAME"] == 'say "hi" $x'


def test_fib_trie_fallback_when_netlink_fails(tmp_path: Path) -> None:
    def broken() -> dict[str, list[str]]:
        raise OSError("netlink not permitted")

    inv = collector(make_host(tmp_path), ipv4_getter=broken).collect()
    ifaces = {i.name: list(i.addresses) for i in inv.payload.interfaces}
    assert ifaces["lo"][0] == "127.0.0.1"
    assert ifaces["eth0"][0] == "192.0.2.2"
    assert inv.ipv4_method == "fib_trie"
    # 198.51.100.9 matches no connected route: counted, not guessed.
    assert inv.problems["ipv4_without_interface"] == 1
    assert inv.problems["ipv4_netlink_failed"] == 1


def test_package_cap(tmp_path: Path) -> None:
    inv = collector(make_host(tmp_path), max_packages=2).collect()
    assert [k.name for k in inv.payload.packages] == ["base-files", "libc6"]
    assert inv.problems["packages_truncated"] == 1


def test_huge_package_list_stays_far_below_one_mib(tmp_path: Path) -> None:
    roots = make_host(tmp_path)
    stanza = "Package: pkg-{:05d}-{}\nStatus: install ok installed\nVersion: 1.0-{}\n\n"
    write(
        roots.var_lib / "dpkg/status",
        "".join(stanza.format(i, "x" * 40, "y" * 30) for i in range(20_000)),
    )
    inv = collector(roots).collect()
    assert events_pb2.Event(inventory=inv.payload).ByteSize() < 600 * 1024
    assert inv.problems["packages_truncated"] == 20_000 - len(inv.payload.packages)
    assert len(inv.payload.packages) > 1000


def test_rpm_packages(tmp_path: Path) -> None:
    roots = make_host(tmp_path)
    (roots.var_lib / "rpm").mkdir()
    calls: list[list[str]] = []

    def rpm(argv: list[str]) -> str:
        calls.append(argv)
        return "bash\t(none)\t5.1.8-6.el9\tx86_64\nkernel\t1\t5.14.0-1.el9\tx86_64\nbad line\n"

    inv = collector(roots, rpm_runner=rpm).collect()
    assert calls == [RPM_QUERY]
    rpms = [(k.name, k.version) for k in inv.payload.packages if k.manager == "rpm"]
    assert rpms == [("bash", "5.1.8-6.el9"), ("kernel", "1:5.14.0-1.el9")]
    assert inv.problems["rpm_bad_line"] == 1


# --- this machine ----------------------------------------------------------------------------


def test_netlink_reports_loopback() -> None:
    assert "127.0.0.1" in netlink_ipv4_addresses().get("lo", [])


def test_real_inventory() -> None:
    # Debian's package database; an RPM-only developer machine skips, CI (Debian) never does.
    require(Path("/var/lib/dpkg/status").exists(), "a dpkg host (/var/lib/dpkg/status)")
    inv = InventoryCollector(HostRoots(), max_packages=20_000).collect()
    p = inv.payload
    lo = next(i for i in p.interfaces if i.name == "lo")
    assert "127.0.0.1" in lo.addresses
    assert lo.up
    assert p.kernel == os.uname().release
    assert p.architecture == os.uname().machine
    assert p.os_name
    assert p.memory_bytes > 0
    names = {k.name for k in p.packages if k.manager == "dpkg"}
    assert "dpkg" in names
    assert "root" in {u.name for u in p.users}
    assert inv.ipv4_method == "netlink"
    if shutil.which("dpkg-query"):  # dpkg's own view of the same database
        listing = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Package}\t${db:Status-Status}\n"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        installed = {
            line.split("\t")[0] for line in listing.splitlines() if line.endswith("\tinstalled")
        }
        assert installed <= names
        assert len(names) > 10
