"""The report documents: golden files byte for byte, mandatory labels, problems, escaping.

Regenerate the golden files after an intended change with CANHGAC_UPDATE_GOLDEN=1 and review
the diff.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.dossiers.clock import VN_TZ
from collector.dossiers.incidents import Incident
from collector.dossiers.model import Assessment, Decision, Dossier, InformationSystem
from collector.dossiers.regime import load_regimes
from collector.dossiers.report_labels import MANDATORY_VI
from collector.dossiers.reports import (
    Format,
    Lang,
    Report,
    build_annual,
    build_closure,
    build_initial,
    render,
    render_html,
)

GOLDEN = Path(__file__).parent / "golden"
NEW = load_regimes(Path(__file__).resolve().parents[3] / "rules" / "regimes").select("vn-2026")
DETECTED = dt.datetime(2026, 9, 10, 8, 30, tzinfo=VN_TZ)

SYSTEM = InformationSystem.model_validate(
    {
        "id": "dvc-portal",
        "name": "Cổng dịch vụ công tỉnh",
        "owner": {"name": "UBND tỉnh Lâm Đồng"},
        "operator": {"name": "Trung tâm Chuyển đổi số"},
        "system_type": "citizen_business_service",
        "info_classes": ["public", "personal_basic"],
        "proposed_level": 3,
    }
)
EMAIL = InformationSystem.model_validate(
    {
        "id": "mail",
        "name": "Thư điện tử công vụ",
        "owner": {"name": "UBND tỉnh Lâm Đồng"},
        "operator": {"name": "Trung tâm Chuyển đổi số"},
        "system_type": "internal",
        "info_classes": ["private"],
    }
)
QUY_CHE = Decision(number="12/QĐ-UBND", date=dt.date(2026, 3, 1), issuer="UBND tỉnh")
APPROVAL = Decision(number="345/QĐ-UBND", date=dt.date(2026, 5, 10), issuer="UBND tỉnh")


def complete_incident(**changes: Any) -> Incident:
    data: dict[str, Any] = {
        "id": "01JINC0000000000000000000A",
        "report_code": "05/BC-TTCĐS",
        "title": "Thay đổi giao diện Cổng dịch vụ công",
        "system_id": "dvc-portal",
        "system_level": 3,
        "reporter": {
            "name": "Trung tâm Chuyển đổi số",
            "address": "36 Trần Phú, Đà Lạt",
            "phone": "0263 3555 000",
            "email": "ttcds@lamdong.gov.vn",
        },
        "contact": {
            "name": "Nguyễn Văn An",
            "title": "Phó Giám đốc",
            "phone": "0912 000 111",
            "email": "an.nv@lamdong.gov.vn",
        },
        "description": "Trang chủ bị thay đổi giao diện <script> lúc 08:30; không mất dữ liệu.",
        "detected_at": DETECTED,
        "status": "handled",
        "detection_methods": [{"kind": "ids"}, {"kind": "notified_by", "detail": "NCSC"}],
        "notified": ["coordinating_agency"],
        "host_os": "Ubuntu 22.04",
        "services": ["web", "database"],
        "controls": ["firewall", "ids"],
        "public_ips": ["14.225.10.20"],
        "domains": ["dichvucong.lamdong.gov.vn"],
        "purpose": "Dịch vụ công trực tuyến",
        "attachments": ["system_logs"],
        "confidential": True,
        "reported_at": dt.datetime(2026, 9, 10, 14, 0, tzinfo=VN_TZ),
        "category": "defacement",
        "severity": "serious",
        "closure": {
            "initial_report_ref": "05/BC-TTCĐS",
            "initial_report_date": "2026-09-10",
            "result": "Khôi phục từ bản sao lưu; vá lỗ hổng CMS.",
            "lessons": "Cập nhật CMS hằng tháng.",
            "documents": ["Nhật ký web", "Phương án ứng phó"],
        },
    }
    data.update(changes)
    return Incident.model_validate(data)


def annual(lang: Lang) -> Report:
    dossier = Dossier(
        status="approved",
        quy_che_decision=QUY_CHE,
        approval_decision=APPROVAL,
        assessments=(
            Assessment(kind="periodic", date=dt.date(2026, 6, 1), assessor="Công ty X"),
            Assessment(kind="before_go_live", date=dt.date(2025, 1, 1), assessor="Công ty X"),
        ),
    )
    incidents = [
        complete_incident(),
        complete_incident(id="B", category="malware"),
        complete_incident(id="C", detected_at=dt.datetime(2026, 12, 15, tzinfo=VN_TZ)),  # next
        complete_incident(id="D", system_id="ghost", detected_at=DETECTED),
    ]
    systems = [(SYSTEM, dossier), (EMAIL, Dossier())]
    return build_annual(2026, NEW, systems, incidents, lang=lang)


def reports() -> dict[str, Report]:
    out: dict[str, Report] = {}
    langs: tuple[Lang, ...] = ("vi", "en")
    for lang in langs:
        out[f"initial_{lang}"] = build_initial(complete_incident(), SYSTEM, NEW, lang=lang)
        out[f"closure_{lang}"] = build_closure(complete_incident(), SYSTEM, NEW, lang=lang)
        out[f"annual_{lang}"] = annual(lang)
    bare = Incident(id="X", detected_at=DETECTED)
    out["initial_incomplete_vi"] = build_initial(bare, None, NEW)
    return out


FORMATS: tuple[Format, ...] = ("html", "json")
CASES = [(name, fmt) for name in reports() for fmt in FORMATS]


@pytest.mark.parametrize(("name", "fmt"), CASES)
def test_rendering_matches_the_golden_file(name: str, fmt: Format) -> None:
    text = render(reports()[name], fmt)
    path = GOLDEN / f"{name}.{fmt}"
    if os.environ.get("CANHGAC_UPDATE_GOLDEN"):
        path.write_bytes(text.encode("utf-8"))
    assert text.encode("utf-8") == path.read_bytes()


@pytest.mark.parametrize("kind", ["initial", "closure", "annual"])
def test_every_mandatory_vietnamese_label_is_present(kind: str) -> None:
    page = render_html(reports()[f"{kind}_vi"])
    missing = [lbl for lbl in MANDATORY_VI[kind] if lbl not in page]
    assert missing == []


def test_a_complete_incident_has_no_problems() -> None:
    r = reports()
    assert r["initial_vi"].problems == ()
    assert r["closure_en"].problems == ()


def test_missing_mandatory_fields_are_listed_not_left_blank() -> None:
    report = reports()["initial_incomplete_vi"]
    keys = {p.rsplit("(", 1)[1].rstrip(")") for p in report.problems}
    assert {"reporter.name", "contact.email", "system.operator", "incident.description"} <= keys
    assert {"incident.detection", "incident.notified", "report.reported_at"} <= keys
    assert "incident.detected_at" not in keys
    page = render_html(report)
    assert page.count("(chưa có — bắt buộc)") == len(report.problems)


def test_values_are_escaped_and_the_page_is_self_contained() -> None:
    page = render_html(reports()["initial_vi"])
    assert "&lt;script&gt;" in page
    assert "<script" not in page
    for external in ("http://", "https://", "<link", "src="):
        assert external not in page


def test_unknown_category_is_a_problem() -> None:
    report = build_initial(complete_incident(category="aliens"), SYSTEM, NEW)
    assert any("not one of" in p for p in report.problems)


def test_annual_counts_only_the_period_and_flags_strays() -> None:
    data = json.loads(render(annual("en"), "json"))
    row = data["table"]["rows"][0]
    assert (row["incidents.defacement"], row["incidents.malware"], row["incidents.total"]) == (
        "1",
        "1",
        "2",
    )
    assert row["assessments"] == "Periodic"  # the 2025-01-01 one is before the period
    assert data["table"]["rows"][1]["incidents.total"] == "0"
    assert any("ghost" in p for p in data["problems"])
    assert any(p.startswith("mail:") for p in data["problems"])  # no proposed level


# --- the `incidents` / `reports` commands ----------------------------------------------------


def _cli(tmp_path: Path) -> Callable[..., int]:
    import argparse

    from collector.dossiers.incident_cli import add_incident_commands

    config = tmp_path / "collector.yaml"
    regimes = Path(__file__).resolve().parents[3] / "rules" / "regimes"
    config.write_text(f"state_dir: {tmp_path / 'state'}\ndossiers: {{regime_dir: {regimes}}}\n")
    (tmp_path / "state").mkdir()
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("--config", "-c", type=Path, default=config)
        return sp

    add_incident_commands(sub, with_config)

    def run(*args: str) -> int:
        ns = parser.parse_args(args)
        return int(ns.fn(ns))

    return run


def test_incident_commands_show_update_report_and_annual(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from canhgac.v1 import alert_pb2
    from collector import config as cfgmod
    from collector.app import open_configured_store
    from collector.dossiers.incidents import IncidentError

    run = _cli(tmp_path)
    store = open_configured_store(cfgmod.load(tmp_path / "collector.yaml")).store
    store.migrate()
    store.upsert_system(SYSTEM)
    first_ns = int(DETECTED.timestamp() * 1e9)
    a = alert_pb2.Alert(
        id="A1",
        incident_id="INC-1",
        system_id="dvc-portal",
        category="defacement",
        first_seen_ns=first_ns,
        created_ns=first_ns,
    )
    store.open_or_attach(a, at_ns=first_ns)
    store.close()

    assert run("incidents", "list") == 0
    assert "INC-1  dvc-portal  2026-09-10T08:30:00+07:00  defacement" in capsys.readouterr().out
    assert run("incidents", "show", "INC-1") == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert [c["id"] for c in shown["clocks"]] == ["report-72h"]
    full = json.loads(complete_incident(id="INC-1").model_dump_json())
    edited = tmp_path / "inc.yaml"
    edited.write_text(yaml.safe_dump({**full, "clocks": shown["clocks"]}, allow_unicode=True))
    assert run("incidents", "update", "INC-1", "--file", str(edited)) == 0
    capsys.readouterr()
    out = tmp_path / "r.json"
    args = ("--kind", "initial", "--format", "json", "--lang", "en", "-o", str(out))
    assert run("incidents", "report", "INC-1", *args) == 0
    assert json.loads(out.read_text())["problems"] == []
    assert run("incidents", "report", "INC-1", "--kind", "closure") == 0
    assert "BÁO CÁO KẾT THÚC ỨNG PHÓ SỰ CỐ" in capsys.readouterr().out
    assert run("incidents", "show", "INC-1") == 0
    log = yaml.safe_load(capsys.readouterr().out)["report_log"]
    assert [(e["kind"], e["format"], e["lang"]) for e in log] == [
        ("initial", "json", "en"),
        ("closure", "html", "vi"),
    ]
    assert run("reports", "annual", "--year", "2026", "--format", "json") == 0
    table = json.loads(capsys.readouterr().out)["table"]
    assert table["rows"][0]["incidents.defacement"] == "1"
    with pytest.raises(IncidentError):
        run("incidents", "show", "nope")


def test_every_mandatory_field_a_regime_names_is_a_field_of_the_reports() -> None:
    from collector.dossiers.regime import load_regimes
    from collector.dossiers.report_labels import LABELS

    regimes = load_regimes(Path(__file__).resolve().parents[3] / "rules" / "regimes")
    assert set(regimes) == {"vn-2026", "vn-legacy-2016"}
    for regime in regimes.values():
        for kind, form in regime.spec.report_forms.items():
            unknown = [key for key in form.mandatory_fields if key not in LABELS]
            assert unknown == [], (regime.id, kind)
            assert form.source
            assert form.confidence
