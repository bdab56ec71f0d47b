"""Installed packages: the dpkg status database, and rpm through its own command."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from canhgac.v1 import events_pb2

# dpkg states in which the package's files are on disk (dpkg-query(1) "Status").
_PRESENT_STATES = frozenset(
    {"installed", "unpacked", "half-configured", "triggers-awaiting", "triggers-pending"}
)
RPM_QUERY = ["rpm", "-qa", "--queryformat", r"%{NAME}\t%{EPOCH}\t%{VERSION}-%{RELEASE}\t%{ARCH}\n"]

# Runs a command and returns its stdout; raises OSError / subprocess errors on failure.
CommandRunner = Callable[[list[str]], str]


@dataclass
class PackagesResult:
    packages: list[events_pb2.InstalledPackage] = field(default_factory=list)
    # Reason -> count of records that gave no package (health.unparsed).
    problems: dict[str, int] = field(default_factory=dict)

    def count(self, reason: str) -> None:
        self.problems[reason] = self.problems.get(reason, 0) + 1


def _stanzas(text: str) -> Iterator[dict[str, str]]:
    """deb822 paragraphs as {field: first-line value}; continuation lines are skipped."""
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                yield current
            current = {}
        elif line[0] in " \t":
            continue  # a continuation of a multi-line field (Description, Conffiles)
        else:
            name, sep, value = line.partition(":")
            if sep:
                current[name] = value.strip()
    if current:
        yield current


def parse_dpkg_status(text: str, result: PackagesResult) -> None:
    """Add every package of a dpkg status file whose files are installed."""
    for stanza in _stanzas(text):
        name, status = stanza.get("Package", ""), stanza.get("Status", "").split()
        if not name or len(status) != 3:
            result.count("dpkg_bad_stanza")
            continue
        if status[2] not in _PRESENT_STATES:
            continue  # removed, config files only, or never installed
        result.packages.append(
            events_pb2.InstalledPackage(
                name=name,
                version=stanza.get("Version", ""),
                architecture=stanza.get("Architecture", ""),
                manager="dpkg",
            )
        )


def run_command(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


def parse_rpm_output(text: str, result: PackagesResult) -> None:
    for line in text.splitlines():
        f = line.split("\t")
        if len(f) != 4 or not f[0]:
            result.count("rpm_bad_line")
            continue
        epoch = "" if f[1] in ("(none)", "0", "") else f[1] + ":"
        arch = "" if f[3] == "(none)" else f[3]
        result.packages.append(
            events_pb2.InstalledPackage(
                name=f[0], version=epoch + f[2], architecture=arch, manager="rpm"
            )
        )


def installed_packages(var_lib: Path, runner: CommandRunner | None = None) -> PackagesResult:
    """dpkg packages from <var_lib>/dpkg/status; rpm ones when <var_lib>/rpm exists and
    `rpm` is on PATH (or a `runner` stands in for it). Sorted by (manager, name, arch,
    version)."""
    result = PackagesResult()
    try:
        text = (var_lib / "dpkg" / "status").read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        pass
    except OSError:
        result.count("dpkg_unreadable")
    else:
        parse_dpkg_status(text, result)
    if runner is None and _on_path("rpm"):
        runner = run_command
    if (var_lib / "rpm").is_dir() and runner is not None:
        try:
            parse_rpm_output(runner(RPM_QUERY), result)
        except (OSError, subprocess.SubprocessError):
            result.count("rpm_query_failed")
    result.packages.sort(key=lambda p: (p.manager, p.name, p.architecture, p.version))
    return result


def _on_path(program: str) -> bool:
    """shutil.which without shutil, whose import brings bz2 and lzma into the agent."""
    for directory in os.environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(directory or ".", program)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return True
    return False
