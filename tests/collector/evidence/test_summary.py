"""The summary pages escape every value and load nothing from outside."""

from __future__ import annotations

import pytest

from collector.evidence.summary import render_summary

FACTS = {
    "system_id": "dvc",
    "system_name": "<script>alert(1)</script>",
    "level": 3,
    "regime_id": "vn-2026",
    "regime_title": {"vi": "Luật An ninh mạng", "en": "Cybersecurity Law"},
    "from": "2026-11-01",
    "to": "2026-11-03",
    "collector": 'tinh-x" onload="x',
    "created": "2026-11-30",
    "events": 26,
    "agents": 2,
    "gaps": 2,
    "alerts": 1,
    "incidents": 0,
    "findings": 1,
    "finding_messages": {"vi": ["<img src=http://evil/x>"], "en": ["<img src=http://evil/x>"]},
    "rule_files": 3,
    "goldens_ok": False,
    "audit_records": 5,
}


@pytest.mark.parametrize(("lang", "word"), [("vi", "Hệ thống thông tin"), ("en", "FAILED")])
def test_values_are_escaped_and_nothing_external_is_loaded(lang: str, word: str) -> None:
    page = render_summary(lang, FACTS, ["<evil>.json"]).decode()
    assert word in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    for raw in ("<script", "<img", "<link", "<evil>", "url(", "@import", '" onload'):
        assert raw not in page
