"""Host facts from files: os-release, /proc/meminfo, /proc/stat and the password file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from canhgac.v1 import events_pb2

INT32_MAX = 2**31 - 1
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\$": "$", "\\`": "`"}


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
        for escaped, plain in _UNESCAPE.items():
            value = value.replace(escaped, plain)
    return value


def parse_os_release(text: str) -> dict[str, str]:
    """The KEY=value pairs of an os-release file (os-release(5)), values unquoted."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        out[key.strip()] = _unquote(value)
    return out


def os_name_version(etc_root: Path, usr_lib: Path) -> tuple[str, str]:
    """(NAME, VERSION_ID) from <etc_root>/os-release, else <usr_lib>/os-release; blanks if none."""
    for path in (etc_root / "os-release", usr_lib / "os-release"):
        try:
            fields = parse_os_release(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
        version = fields.get("VERSION_ID") or fields.get("VERSION") or fields.get("BUILD_ID", "")
        return fields.get("NAME", "Linux"), version
    return "", ""


def memory_bytes(proc_root: Path) -> int:
    """MemTotal from <proc_root>/meminfo in bytes; 0 when unreadable."""
    try:
        text = (proc_root / "meminfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                unit = 1024 if len(parts) < 3 or parts[2] == "kB" else 1
                return int(parts[1]) * unit
    return 0


def boot_time_ns(proc_root: Path) -> int:
    """The `btime` line of <proc_root>/stat as Unix ns; 0 when unreadable."""
    try:
        text = (proc_root / "stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("btime "):
            value = line.split()[1]
            return int(value) * 1_000_000_000 if value.isdigit() else 0
    return 0


@dataclass
class UsersResult:
    users: list[events_pb2.LocalUser]
    bad_lines: int


def local_users(passwd: Path) -> UsersResult:
    """Every account in a passwd file, sorted by uid then name; malformed lines counted."""
    try:
        text = passwd.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return UsersResult([], 0)
    users: list[events_pb2.LocalUser] = []
    bad = 0
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        f = line.split(":")
        if len(f) != 7 or not f[0] or not f[2].isdigit() or not f[3].isdigit():
            bad += 1
            continue
        if max(int(f[2]), int(f[3])) > INT32_MAX:  # the proto's uid/gid are int32
            bad += 1
            continue
        users.append(
            events_pb2.LocalUser(name=f[0], uid=int(f[2]), gid=int(f[3]), home=f[5], shell=f[6])
        )
    users.sort(key=lambda u: (u.uid, u.name))
    return UsersResult(users, bad)
