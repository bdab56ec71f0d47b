"""The collector's configuration model and its shipped example."""

from __future__ import annotations

from pathlib import Path

import pytest

from canhgac.config import load_yaml, parse_model
from canhgac.errors import ConfigError
from collector import cli
from collector.config import CollectorConfig, example_text


def test_example_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = parse_model(CollectorConfig, load_yaml(example_text()), source="example")
    assert cfg.storage.kind == "sqlite"
    f = tmp_path / "c.yaml"
    f.write_text(example_text())
    assert cli.main(["validate", "--config", str(f)]) == 0
    assert "valid" in capsys.readouterr().out


def test_example_command_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["example"]) == 0
    assert capsys.readouterr().out == example_text()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"ingest": {"listen": "nohost"}}, "ingest.listen"),
        ({"ingest": {"listen": "0.0.0.0:70000"}}, "port must be"),
        ({"ingest": {"max_batch_events": 0}}, "ingest.max_batch_events"),
        ({"storage": {"kind": "postgres"}}, "needs postgres_dsn"),
        ({"storage": {"kind": "mysql"}}, "storage.kind"),
        ({"tls": {"mode": "files"}}, "needs cert_file and key_file"),
        ({"http": {"enabled": True, "lsten": "x"}}, "http.lsten"),
    ],
)
def test_bad_values_are_refused_with_their_path(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_model(CollectorConfig, data, source="c.yaml")


def test_validate_command_reports_error_and_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("ingest:\n  max_batch_bytes: 12\n")
    assert cli.main(["validate", "--config", str(f)]) == 2
    err = capsys.readouterr().err
    assert "ingest.max_batch_bytes" in err


def test_dsn_is_never_printed(tmp_path: Path) -> None:
    cfg = parse_model(
        CollectorConfig,
        {"storage": {"kind": "postgres", "postgres_dsn": "postgresql://u:hunter2@db/x"}},
        source="c.yaml",
    )
    assert "hunter2" not in repr(cfg)
    assert "hunter2" not in str(cfg.model_dump())


def test_read_commands_refuse_to_create_a_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(f"state_dir: {tmp_path / 'state'}\n")
    (tmp_path / "state").mkdir()
    for command in (["alerts", "list"], ["agents", "list"]):
        assert cli.main([*command, "--config", str(f)]) == 2
        assert "no database yet" in capsys.readouterr().err
    assert not (tmp_path / "state" / "collector.db").exists()
