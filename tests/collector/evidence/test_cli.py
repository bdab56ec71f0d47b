"""`canhgac-collector evidence ...` end to end: export, public key, offline verify."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from collector.cli import main
from collector.evidence.signing import KEY_FILE
from collector.storage.sqlite import SqliteStore
from tests.collector.evidence import tamper, world


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "collector.yaml"
    settings = {
        "name": "tinh-x",
        "state_dir": str(tmp_path / "state"),
        "storage": {"kind": "sqlite", "sqlite_path": str(tmp_path / "c.db")},
        "dossiers": {"regime_dir": str(world.ROOT / "rules" / "regimes")},
        "detection": {"rule_paths": [str(world.ROOT / "rules" / "linux" / "auth")]},
    }
    path.write_text(json.dumps(settings))  # JSON is YAML
    store = SqliteStore(tmp_path / "c.db")
    store.migrate()
    world.populate(store)
    store.close()
    return path


def _export(config: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "evidence",
            "export",
            "-c",
            str(config),
            "--system",
            "dvc",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-03",
            "--out",
            str(out),
            *extra,
        ]
    )


def test_export_public_key_and_offline_verify(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "b.tar"
    assert _export(config_file, out, "--raw-events") == 0
    assert "13 files, 26 events" in capsys.readouterr().out
    key_path = tmp_path / "state" / KEY_FILE
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    assert main(["evidence", "public-key", "-c", str(config_file)]) == 0
    pem = capsys.readouterr().out
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert "PRIVATE" not in pem
    pub = tmp_path / "collector.pub.pem"
    pub.write_text(pem)
    # Offline: the configuration and the database are gone.
    config_file.unlink()
    (tmp_path / "c.db").unlink()
    assert main(["evidence", "verify", str(out), "--public-key", str(pub)]) == 0
    assert "OK: signature valid, 13 files intact" in capsys.readouterr().out
    assert b"PRIVATE KEY" not in out.read_bytes()

    tamper.rewrite(out, lambda m: m.pop("rules.json"))
    assert main(["evidence", "verify", str(out), "--public-key", str(pub)]) == 1
    assert "FAIL removed: rules.json" in capsys.readouterr().out


def test_refusals_exit_2_with_the_reason(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "b.tar"
    assert (
        main(
            [
                "evidence",
                "export",
                "-c",
                str(config_file),
                "--system",
                "dvc",
                "--from",
                "2026-11-03",
                "--to",
                "2026-11-01",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert "--from must be before --to" in capsys.readouterr().err
    assert (
        main(
            [
                "evidence",
                "export",
                "-c",
                str(config_file),
                "--system",
                "ghost",
                "--from",
                "2026-11-01",
                "--to",
                "2026-11-03",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert "unknown information system" in capsys.readouterr().err
    assert _export(config_file, out) == 0
    assert _export(config_file, out) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["evidence", "verify", str(out), "--public-key", str(config_file)]) == 2
    assert "not a PEM public key" in capsys.readouterr().err
