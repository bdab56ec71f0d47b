"""`canhgac-collector systems ...` against a store on disk, through the collector's main()."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import yaml

from collector import cli

PORTAL = """\
id: dvc-portal
name: Cổng dịch vụ công tỉnh
owner: {name: UBND tỉnh, email: ubnd@tinh.gov.vn}
operator: {name: Trung tâm CNTT&TT}
system_type: citizen_business_service
info_classes: [public, personal_basic]
handles_administrative_procedures: true
proposed_level: 3
transition_deadline: 2027-07-01
legacy_level_nd85: 3
"""
EGOV = PORTAL.replace("dvc-portal", "egov")

Run = Callable[..., int]


def main(argv: Sequence[str]) -> int:
    """The collector's own command line (`systems` is registered there)."""
    return cli.main(argv)


@pytest.fixture
def run(tmp_path: Path) -> Run:
    config = tmp_path / "collector.yaml"
    config.write_text(f"state_dir: {tmp_path / 'state'}\n")
    (tmp_path / "state").mkdir()

    def run(*args: str) -> int:
        return main([*args, "--config", str(config)])

    return run


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_create_show_list_edit_delete(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = write(tmp_path, "portal.yaml", PORTAL)
    assert run("systems", "create", "--file", f) == 0
    assert run("systems", "create", "--file", f) == 2
    assert "exists already" in capsys.readouterr().err
    assert run("systems", "list") == 0
    out = capsys.readouterr().out
    assert "dvc-portal  Cổng dịch vụ công tỉnh  proposed=3  approved=-" in out
    assert "dossier=draft (Đang dự thảo)  assets=0" in out
    assert run("systems", "list", "--json") == 0
    assert json.loads(capsys.readouterr().out)["dossier_status"] == "draft"
    edited = write(
        tmp_path, "edited.yaml", PORTAL.replace("proposed_level: 3", "approved_level: 3")
    )
    assert run("systems", "edit", "dvc-portal", "--file", edited) == 0
    assert run("systems", "edit", "other", "--file", edited) == 2
    assert "id is 'dvc-portal', not 'other'" in capsys.readouterr().err
    assert run("systems", "show", "dvc-portal") == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["system"]["approved_level"] == 3
    assert shown["dossier"]["status_label"] == "Đang dự thảo"
    assert run("systems", "delete", "dvc-portal") == 0
    assert run("systems", "show", "dvc-portal") == 2
    assert "dvc-portal: no such system" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id: [unclosed", "invalid YAML"),
        (PORTAL + "name: again\n", "duplicate key 'name'"),
        (PORTAL + "colour: blue\n", "colour: Extra inputs are not permitted"),
        (PORTAL.replace("proposed_level: 3", "proposed_level: 7"), "proposed_level: Input"),
        ("- a list\n", "the top level must be a mapping"),
    ],
)
def test_bad_files_are_refused_with_exit_2(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    assert run("systems", "create", "--file", write(tmp_path, "bad.yaml", text)) == 2
    assert message in capsys.readouterr().err


def test_assets_are_set_added_shown_and_conflicts_refused(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run("systems", "create", "--file", write(tmp_path, "p.yaml", PORTAL))
    run("systems", "create", "--file", write(tmp_path, "e.yaml", EGOV))
    assert (
        run("systems", "assets", "dvc-portal", "--agent", "web-01", "--cidr", "10.20.0.0/24") == 0
    )
    assert run("systems", "assets", "dvc-portal", "--add", "--hostname", "Web-01.tinh.gov.vn") == 0
    capsys.readouterr()
    assert run("systems", "assets", "dvc-portal") == 0
    assert yaml.safe_load(capsys.readouterr().out) == {
        "agents": ["web-01"],
        "hostnames": ["web-01.tinh.gov.vn"],
        "cidrs": ["10.20.0.0/24"],
    }
    assert run("systems", "assets", "egov", "--agent", "web-01") == 2
    assert "agent web-01 is in system 'egov' and in system 'dvc-portal'" in capsys.readouterr().err
    assert run("systems", "assets", "egov", "--agent", "a", "--agent", "a") == 2
    assert "agents: Value error, a is listed twice" in capsys.readouterr().err
    assert run("systems", "assets", "egov", "--cidr", "10.0.0.1/8") == 2
    assert "has host bits set" in capsys.readouterr().err
    assert run("systems", "delete", "dvc-portal") == 2
    assert "remove them first" in capsys.readouterr().err
    assert run("systems", "assets", "dvc-portal", "--clear") == 0
    assert run("systems", "delete", "dvc-portal") == 0


def test_the_dossier_lifecycle_from_the_command_line(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run("systems", "create", "--file", write(tmp_path, "p.yaml", PORTAL))
    dossier = ("systems", "dossier", "dvc-portal", "--actor", "an")
    approve = ["--status", "approved", "--decision-number", "345/QĐ-UBND"]
    approve += ["--decision-date", "2026-05-10", "--issuer", "UBND tỉnh"]
    assert run(*dossier, "--status", "appraised") == 2
    assert "cannot go from draft" in capsys.readouterr().err
    assert run(*dossier, "--status", "sent_for_appraisal", "--appraisal-body", "Phòng ATTT") == 0
    assert run(*dossier, "--status", "appraised") == 0
    assert run(*dossier, *approve) == 2
    assert "approval refused" in capsys.readouterr().err
    assert run(*dossier, "--quy-che-number", "12/QĐ-UBND", "--quy-che-date", "2026-03-01") == 2
    assert "give the number, the date and the issuer together" in capsys.readouterr().err
    quy_che = ("--quy-che-number", "12/QĐ-UBND", "--quy-che-date", "2026-03-01")
    assert run(*dossier, *quy_che, "--quy-che-issuer", "UBND tỉnh") == 0
    assert run(*dossier, *approve, "--note", "QĐ phê duyệt cấp độ 3") == 0
    assert "dossier approved (Đã được phê duyệt)" in capsys.readouterr().out
    assert run("systems", "show", "dvc-portal") == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["dossier"]["approval_decision"]["number"] == "345/QĐ-UBND"
    assert [(h["from"], h["to"], h["actor"]) for h in shown["history"]] == [
        ("draft", "sent_for_appraisal", "an"),
        ("sent_for_appraisal", "appraised", "an"),
        ("appraised", "appraised", "an"),
        ("appraised", "approved", "an"),
    ]
    assert shown["history"][-1]["note"] == "QĐ phê duyệt cấp độ 3"
    with pytest.raises(SystemExit) as exited:
        run(*dossier, "--status", "done")
    assert exited.value.code == 2


def test_export_import_round_trip(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run("systems", "create", "--file", write(tmp_path, "p.yaml", PORTAL))
    run("systems", "create", "--file", write(tmp_path, "e.yaml", EGOV))
    run("systems", "assets", "dvc-portal", "--agent", "web-01", "--cidr", "10.20.0.0/24")
    quy_che = ("--quy-che-number", "1", "--quy-che-date", "2026-03-01", "--quy-che-issuer", "U")
    run("systems", "dossier", "egov", *quy_che, "--status", "sent_for_appraisal")
    capsys.readouterr()
    assert run("systems", "export") == 0
    exported = capsys.readouterr().out
    assert [s["system"]["id"] for s in yaml.safe_load(exported)["systems"]] == [
        "dvc-portal",
        "egov",
    ]

    # Into an empty database: the same export comes out.
    other = tmp_path / "other"
    other.mkdir()
    config = other / "collector.yaml"
    config.write_text(f"state_dir: {other}\n")
    f = write(tmp_path, "export.yaml", exported)
    assert main(["systems", "import", f, "--config", str(config)]) == 0
    capsys.readouterr()
    assert main(["systems", "export", "--config", str(config)]) == 0
    assert capsys.readouterr().out == exported
    # Into the database it came from: nothing changes, no history is added.
    assert run("systems", "import", f) == 0
    capsys.readouterr()
    assert run("systems", "export") == 0
    assert capsys.readouterr().out == exported
    assert run("systems", "show", "egov") == 0
    assert len(yaml.safe_load(capsys.readouterr().out)["history"]) == 1
    assert run("systems", "export", "egov") == 0
    assert [s["system"]["id"] for s in yaml.safe_load(capsys.readouterr().out)["systems"]] == [
        "egov"
    ]


def test_import_moves_assets_and_refuses_conflicts_before_writing(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run("systems", "create", "--file", write(tmp_path, "p.yaml", PORTAL))
    run("systems", "create", "--file", write(tmp_path, "e.yaml", EGOV))
    run("systems", "assets", "dvc-portal", "--agent", "web-01")
    run("systems", "assets", "egov", "--agent", "mail-01")
    capsys.readouterr()
    run("systems", "export")
    data = yaml.safe_load(capsys.readouterr().out)
    # Swap the two agents between the systems: allowed, the final state has no conflict.
    data["systems"][0]["assets"]["agents"], data["systems"][1]["assets"]["agents"] = (
        ["mail-01"],
        ["web-01"],
    )
    assert run("systems", "import", write(tmp_path, "swap.yaml", yaml.safe_dump(data))) == 0
    # Only egov in the file, claiming dvc-portal's agent: refused, nothing written.
    egov = data["systems"][1]
    egov["assets"]["agents"] = ["mail-01"]
    egov["system"]["name"] = "renamed"
    one = write(tmp_path, "one.yaml", yaml.safe_dump({"systems": [egov]}))
    assert run("systems", "import", one) == 2
    assert "agent mail-01 is in system 'egov' and in system 'dvc-portal'" in capsys.readouterr().err
    assert run("systems", "show", "egov") == 0
    assert yaml.safe_load(capsys.readouterr().out)["system"]["name"] != "renamed"
    # Twice in one file, and the same id twice: refused by validation.
    both = {"systems": [egov, {**egov, "system": {**egov["system"], "id": "x"}}]}
    assert run("systems", "import", write(tmp_path, "both.yaml", yaml.safe_dump(both))) == 2
    assert "agent mail-01 is in system 'x' and in system 'egov'" in capsys.readouterr().err
    twice = {"systems": [egov, egov]}
    assert run("systems", "import", write(tmp_path, "twice.yaml", yaml.safe_dump(twice))) == 2
    assert "listed more than once: egov" in capsys.readouterr().err


def test_level_names_the_minimum_level_and_its_articles(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    regimes = Path(__file__).resolve().parents[3] / "rules" / "regimes"
    big = PORTAL.replace("proposed_level: 3", "proposed_level: 1") + (
        "data_subjects_sensitive: 150000\n"
    )
    assert run("systems", "create", "--file", write(tmp_path, "p.yml", big)) == 0
    capsys.readouterr()
    assert run("systems", "level", "dvc-portal", "--regimes", str(regimes)) == 0
    out = yaml.safe_load(capsys.readouterr().out)
    assert out["regime"] == "vn-2026"
    assert out["minimum_level"] >= 3
    assert all(c["article"] for c in out["criteria"])
    assert any("below the minimum level" in w for w in out["warnings"])
