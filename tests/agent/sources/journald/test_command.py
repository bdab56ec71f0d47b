"""The journalctl command line and the config, run against the real journalctl."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agent.sources.journald import JournaldConfig
from agent.sources.journald.command import journalctl_argv, read_machine_id, valid_cursor
from canhgac.strictmodel import ValidationError
from tests.agent.sources.journald.journals import (
    JOURNALCTL,
    entry,
    needs_journal_tools,
    write_journal,
)

MACHINE = "5ea4b1180c16436496ad35b6437b6ba8"
OTHER = "ffffffffffffffffffffffffffffffff"


def test_argv_resume_and_start_positions() -> None:
    cfg = JournaldConfig(files=["/j/a.journal"], identifiers=["sshd"], facilities=[4, 10])
    argv = journalctl_argv(cfg, "/bin/journalctl", cursor="s=1;i=2", machine_id=None)
    assert argv[:4] == ["/bin/journalctl", "--follow", "--merge", "--output=json"]
    assert "--file=/j/a.journal" in argv
    assert argv[-8:] == [
        "--no-tail",
        "--after-cursor=s=1;i=2",
        "SYSLOG_FACILITY=4",
        "SYSLOG_FACILITY=10",
        "+",
        "SYSLOG_IDENTIFIER=sshd",
        "+",
        "_COMM=sshd",
    ]
    end = journalctl_argv(JournaldConfig(), "j", cursor=None, machine_id=None)
    assert "--lines=0" in end
    assert "--no-tail" not in end
    start = journalctl_argv(
        JournaldConfig(read_from="beginning"), "j", cursor=None, machine_id=None
    )
    assert "--no-tail" in start
    assert "--lines=0" not in start


@needs_journal_tools
@pytest.mark.integration
def test_matches_select_auth_entries_of_this_machine(tmp_path: Path) -> None:
    journal = tmp_path / "mixed.journal"
    write_journal(
        journal,
        [
            entry(0, "sshd", "one", _MACHINE_ID=MACHINE, SYSLOG_FACILITY="3"),
            entry(1, "kernel", "two", _MACHINE_ID=MACHINE, SYSLOG_FACILITY="0"),
            entry(2, "login", "three", _MACHINE_ID=MACHINE, SYSLOG_FACILITY="4"),
            entry(3, "sshd", "four", _MACHINE_ID=OTHER),
            entry(4, "x", "five", _MACHINE_ID=MACHINE, SYSLOG_IDENTIFIER="", _COMM="chpasswd"),
        ],
    )
    cfg = JournaldConfig(files=[str(journal)], read_from="beginning")
    assert JOURNALCTL is not None
    argv = journalctl_argv(cfg, JOURNALCTL, cursor=None, machine_id=MACHINE)
    argv = [a for a in argv if a != "--follow"]
    out = subprocess.run(argv, check=True, capture_output=True, timeout=30, text=True).stdout
    assert [line.split('"MESSAGE":"')[1].split('"')[0] for line in out.splitlines()] == [
        "one",
        "three",
        "five",
    ]


def test_machine_id_and_cursor_syntax(tmp_path: Path) -> None:
    (tmp_path / "machine-id").write_text(MACHINE + "\n")
    assert read_machine_id(tmp_path) == MACHINE
    assert read_machine_id(tmp_path / "nowhere") is None
    assert valid_cursor("s=09ee;i=1;b=0123;m=64;t=660dc7eff5c00;x=5eae")
    assert not valid_cursor("")
    assert not valid_cursor("s=1\n--no-tail")


@pytest.mark.parametrize(
    "bad",
    [
        {"directory": "relative/dir"},
        {"files": ["/a", "/a"]},
        {"files": []},
        {"directory": "/d", "files": ["/f"]},
        {"facilities": [24]},
        {"identifiers": ["sshd --all"]},
        {"identifiers": [], "facilities": []},
        {"restart_backoff_ms": 5000, "restart_backoff_max_ms": 1000},
        {"unknown": 1},
    ],
)
def test_config_rejects(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        JournaldConfig.model_validate(bad)


def test_config_defaults() -> None:
    cfg = JournaldConfig()
    assert cfg.journalctl == "journalctl"
    assert cfg.facilities == [4, 10]
    assert {"sshd", "sudo", "su", "useradd", "chage"} <= set(cfg.identifiers)
    assert cfg.read_from == "end"
