"""Network interfaces: names, MACs and link state from sysfs, addresses from the kernel.

IPv6 addresses come from <proc_root>/net/if_inet6. The kernel has no IPv4 equivalent in procfs,
so IPv4 addresses are asked of rtnetlink (an RTM_GETADDR dump, the way `ip addr` does it),
with a fallback that reads the LOCAL host entries of <proc_root>/net/fib_trie and assigns each
to the interface whose directly connected route (<proc_root>/net/route) contains it.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from collections.abc import Callable
from pathlib import Path

from canhgac.v1 import events_pb2

# iface name -> IPv4 addresses; raises OSError when the kernel cannot be asked.
Ipv4Getter = Callable[[], dict[str, list[str]]]

IFF_UP = 0x1
IFA_F_TEMPORARY = 0x01
_DOWN_STATES = frozenset({"down", "lowerlayerdown", "notpresent", "dormant"})

# linux/netlink.h, linux/rtnetlink.h, linux/if_addr.h
_NLMSG_HDR = struct.Struct("=LHHLL")
_IFADDRMSG = struct.Struct("=BBBBI")
_RTATTR = struct.Struct("=HH")
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_RTM_NEWADDR, _RTM_GETADDR = 20, 22
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300
_IFA_ADDRESS, _IFA_LOCAL, _IFA_LABEL = 1, 2, 3


def _align(n: int) -> int:
    return (n + 3) & ~3


def netlink_ipv4_addresses(timeout: float = 2.0) -> dict[str, list[str]]:
    """IPv4 addresses per interface from an RTM_GETADDR dump over NETLINK_ROUTE."""
    out: dict[str, list[str]] = {}
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as s:
        s.settimeout(timeout)
        s.bind((0, 0))
        request = _IFADDRMSG.pack(socket.AF_INET, 0, 0, 0, 0)
        header = _NLMSG_HDR.pack(
            _NLMSG_HDR.size + len(request), _RTM_GETADDR, _NLM_F_REQUEST | _NLM_F_DUMP, 1, 0
        )
        s.send(header + request)
        while True:
            data = s.recv(1 << 16)
            offset = 0
            while offset + _NLMSG_HDR.size <= len(data):
                length, kind, _flags, _seq, _pid = _NLMSG_HDR.unpack_from(data, offset)
                if length < _NLMSG_HDR.size:
                    raise OSError("malformed netlink message")
                if kind == _NLMSG_DONE:
                    return out
                if kind == _NLMSG_ERROR:
                    (errno_neg,) = struct.unpack_from("=i", data, offset + _NLMSG_HDR.size)
                    if errno_neg:
                        raise OSError(-errno_neg, os.strerror(-errno_neg))
                elif kind == _RTM_NEWADDR:
                    _parse_newaddr(data[offset + _NLMSG_HDR.size : offset + length], out)
                offset += _align(length)


def _parse_newaddr(body: bytes, out: dict[str, list[str]]) -> None:
    family, _plen, _flags, _scope, index = _IFADDRMSG.unpack_from(body, 0)
    if family != socket.AF_INET:
        return
    attrs: dict[int, bytes] = {}
    pos = _IFADDRMSG.size
    while pos + _RTATTR.size <= len(body):
        rta_len, rta_type = _RTATTR.unpack_from(body, pos)
        if rta_len < _RTATTR.size:
            break
        attrs[rta_type] = body[pos + _RTATTR.size : pos + rta_len]
        pos += _align(rta_len)
    raw = attrs.get(_IFA_LOCAL) or attrs.get(_IFA_ADDRESS)
    if raw is None or len(raw) != 4:
        return
    label = attrs.get(_IFA_LABEL, b"").split(b"\0", 1)[0].decode(errors="replace")
    name = label.split(":", 1)[0]  # "eth0:1" is an alias label of eth0
    if not name:
        try:
            name = socket.if_indextoname(index)
        except OSError:
            name = ""
    out.setdefault(name, []).append(str(ipaddress.IPv4Address(raw)))


def fib_trie_ipv4_addresses(proc_root: Path) -> dict[str, list[str]]:
    """IPv4 addresses from the /32 LOCAL entries of fib_trie, placed by connected routes.

    An address no route places is listed under "" (loopback ones under "lo").
    """
    text = (proc_root / "net" / "fib_trie").read_text(encoding="ascii", errors="replace")
    local: set[str] = set()
    last_ip = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(("|-- ", "+-- ")):
            last_ip = stripped[4:].split()[0]
        elif stripped.startswith("/32 host LOCAL") and last_ip:
            local.add(last_ip)
    routes = _connected_routes(proc_root)
    out: dict[str, list[str]] = {}
    for ip in sorted(local, key=lambda a: ipaddress.IPv4Address(a)):
        addr = ipaddress.IPv4Address(ip)
        name = next((n for net, n in routes if addr in net), "")
        if not name and addr.is_loopback:
            name = "lo"
        out.setdefault(name, []).append(ip)
    return out


def _connected_routes(proc_root: Path) -> list[tuple[ipaddress.IPv4Network, str]]:
    """(subnet, interface) of <proc_root>/net/route entries without a gateway, longest first."""
    try:
        text = (proc_root / "net" / "route").read_text(encoding="ascii", errors="replace")
    except OSError:
        return []
    routes: list[tuple[ipaddress.IPv4Network, str]] = []
    for line in text.splitlines()[1:]:
        f = line.split()
        try:
            dest = ipaddress.IPv4Address(int(f[1], 16).to_bytes(4, "little"))
            gateway, mask = int(f[2], 16), int(f[7], 16).to_bytes(4, "little")
        except (IndexError, ValueError):
            continue
        if gateway == 0 and mask != bytes(4):
            net = ipaddress.IPv4Network((dest, str(ipaddress.IPv4Address(mask))), strict=False)
            routes.append((net, f[0]))
    routes.sort(key=lambda r: -r[0].prefixlen)
    return routes


def ipv6_addresses(proc_root: Path) -> dict[str, list[str]]:
    """IPv6 addresses per interface from <proc_root>/net/if_inet6, privacy addresses left out.

    Temporary (privacy) addresses rotate daily; listing them would make the inventory
    "change" every day for nothing an asset list needs.
    """
    try:
        text = (proc_root / "net" / "if_inet6").read_text(encoding="ascii", errors="replace")
    except OSError:
        return {}
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) != 6 or len(f[0]) != 32:
            continue
        try:
            addr = ipaddress.IPv6Address(bytes.fromhex(f[0]))
            flags = int(f[4], 16)
        except ValueError:
            continue
        if flags & IFA_F_TEMPORARY:
            continue
        out.setdefault(f[5], []).append(str(addr))
    return out


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return ""


def _is_up(iface_dir: Path) -> bool:
    state = _read(iface_dir / "operstate")
    if state == "up":
        return True
    if state in _DOWN_STATES:
        return False
    # "unknown" (loopback, many virtual devices): fall back to the administrative flag.
    try:
        return bool(int(_read(iface_dir / "flags"), 16) & IFF_UP)
    except ValueError:
        return False


def interfaces(
    sys_root: Path, ipv4: dict[str, list[str]], ipv6: dict[str, list[str]]
) -> list[events_pb2.NetworkInterface]:
    """One entry per <sys_root>/class/net/<if> (plus any interface only the address lists
    name), sorted by name, addresses IPv4 first, each family sorted."""
    net_dir = sys_root / "class" / "net"
    try:
        names = set(os.listdir(net_dir))
    except OSError:
        names = set()
    names |= {n for n in (*ipv4, *ipv6) if n}
    out: list[events_pb2.NetworkInterface] = []
    for name in sorted(names):
        d = net_dir / name
        mac = _read(d / "address").lower()
        if mac.strip("0:") == "":
            mac = ""  # loopback and tunnels have no hardware address
        addresses = sorted(set(ipv4.get(name, [])), key=ipaddress.IPv4Address) + sorted(
            set(ipv6.get(name, [])), key=ipaddress.IPv6Address
        )
        out.append(
            events_pb2.NetworkInterface(name=name, mac=mac, up=_is_up(d), addresses=addresses)
        )
    return out
