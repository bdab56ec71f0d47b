"""The journalctl command line, and the checks that it can run on this host at all."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from canhgac.errors import SourceUnavailableError

from .config import JournaldConfig
from .entry import OUTPUT_FIELDS

SYSTEM_JOURNAL_ROOTS = (Path("/var/log/journal"), Path("/run/log/journal"))
NOT_FOUND = "journalctl not found: install systemd or disable the journald source"
PERMISSION_HINT = "run as root or add the agent user to group systemd-journal or adm"
# s=<seqnum id>;i=<seqnum>;b=<boot id>;m=<monotonic>;t=<realtime>;x=<xor hash>
_CURSOR = re.compile(r"[a-z]=[0-9a-f]+(;[a-z]=[0-9a-f]+)*")


def valid_cursor(cursor: str) -> bool:
    return _CURSOR.fullmatch(cursor) is not None


def journalctl_argv(
    config: JournaldConfig, executable: str, *, cursor: str | None, machine_id: str | None
) -> list[str]:
    """The full command. Two journalctl traps are avoided on purpose:

    * `--follow` alone implies `--lines=10`, which also applies after `--after-cursor`: only
      ten entries past the cursor are shown, the rest skipped. `--no-tail` lifts that.
    * `--follow` implies `--boot=0` (seen in systemd 252) unless `--merge` is given, so entries of
      an earlier boot after the cursor would be skipped after a reboot. `--merge` also takes
      in other machines' journals, so for the system journal every match group is limited to
      this host's `_MACHINE_ID`.
    """
    argv = [
        executable,
        "--follow",
        "--merge",
        "--output=json",
        f"--output-fields={','.join(OUTPUT_FIELDS)}",
        "--no-pager",
    ]
    if config.directory is not None:
        argv.append(f"--directory={config.directory}")
    for path in config.files or []:
        argv.append(f"--file={path}")
    if cursor is not None:
        argv += ["--no-tail", f"--after-cursor={cursor}"]
    elif config.read_from == "beginning":
        argv.append("--no-tail")
    else:
        argv.append("--lines=0")
    groups = [[f"SYSLOG_FACILITY={f}" for f in config.facilities]]
    groups += [
        [f"{field}={name}" for name in config.identifiers]
        for field in ("SYSLOG_IDENTIFIER", "_COMM")
    ]
    first = True
    for group in (g for g in groups if g):
        if not first:
            argv.append("+")  # groups are ORed; values of one field within a group too
        first = False
        if machine_id is not None:
            argv.append(f"_MACHINE_ID={machine_id}")
        argv += group
    return argv


def find_journalctl(name: str) -> str:
    """The executable to run, or SourceUnavailableError."""
    if "/" in name:
        found = name if os.access(name, os.X_OK) and Path(name).is_file() else None
    else:
        # Imported here: shutil brings bz2 and lzma, and agent.config imports this package
        # even when the source is off.
        import shutil

        found = shutil.which(name)
    if found is None:
        raise SourceUnavailableError(NOT_FOUND, location=name)
    return found


def check_journal(config: JournaldConfig, system_roots: Sequence[Path]) -> str:
    """Raise SourceUnavailableError unless there is a journal file to read; return a short
    description of what will be read, for health.detail."""
    if config.files is not None:
        for name in config.files:
            path = Path(name)
            if not path.is_file():
                raise SourceUnavailableError(f"no journal files: {name} not found")
            _require_readable([path], name)
        return f"files {', '.join(config.files)}"
    roots = [Path(config.directory)] if config.directory else list(system_roots)
    found = [f for root in roots for f in _journal_files(root)]
    where = " or ".join(str(r) for r in roots)
    if not found:
        hint = "" if config.directory else ": journald keeps no logs here (use the authlog source)"
        raise SourceUnavailableError(f"no journal files in {where}{hint}")
    _require_readable(found, where)
    return f"journal in {where}"


def read_machine_id(etc_root: Path) -> str | None:
    """This host's machine id (32 hex digits), or None when /etc/machine-id has none."""
    try:
        text = (etc_root / "machine-id").read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if re.fullmatch(r"[0-9a-f]{32}", text) else None


def _journal_files(root: Path) -> list[Path]:
    # sd_journal_open_directory reads a directory and its per-machine subdirectories.
    patterns = ("*.journal", "*.journal~", "*/*.journal", "*/*.journal~")
    try:
        return [f for pattern in patterns for f in root.glob(pattern) if f.is_file()]
    except OSError:
        return []


def _require_readable(files: Sequence[Path], where: str) -> None:
    if not any(os.access(f, os.R_OK) for f in files):
        raise SourceUnavailableError(
            f"journal files in {where} are not readable: {PERMISSION_HINT}"
        )
