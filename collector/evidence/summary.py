"""The human-readable summary of a bundle, in Vietnamese and in English.

Self-contained HTML: inline style, no script, no external resource, every value escaped.
It summarises; the JSON files are the evidence.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

LABELS: Mapping[str, Mapping[str, str]] = {
    "vi": {
        "title": "Gói bằng chứng giám sát an ninh mạng",
        "system": "Hệ thống thông tin",
        "level": "Cấp độ",
        "regime": "Khung pháp lý",
        "period": "Kỳ báo cáo",
        "collector": "Máy thu thập",
        "created": "Thời điểm tạo",
        "events": "Tổng số sự kiện",
        "agents": "Tác tử (agent)",
        "gaps": "Khoảng mất tín hiệu",
        "alerts": "Cảnh báo",
        "incidents": "Sự cố",
        "findings": "Phát hiện tuân thủ",
        "rules": "Bộ luật phát hiện",
        "goldens": "Kiểm thử mẫu của luật",
        "audit": "Bản ghi nhật ký kiểm toán",
        "ok": "đạt",
        "fail": "KHÔNG đạt",
        "files": "Tệp trong gói",
        "verify": "Kiểm tra gói: canhgac-collector evidence verify GÓI --public-key KHÓA.pem",
    },
    "en": {
        "title": "Cybersecurity monitoring evidence bundle",
        "system": "Information system",
        "level": "Security level",
        "regime": "Legal regime",
        "period": "Period",
        "collector": "Collector",
        "created": "Created",
        "events": "Events in total",
        "agents": "Agents",
        "gaps": "Gaps (agent silent)",
        "alerts": "Alerts",
        "incidents": "Incidents",
        "findings": "Compliance findings",
        "rules": "Detection rules",
        "goldens": "Rule golden tests",
        "audit": "Audit log records",
        "ok": "passed",
        "fail": "FAILED",
        "files": "Files in the bundle",
        "verify": "Verify: canhgac-collector evidence verify BUNDLE --public-key KEY.pem",
    },
}


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _rows(pairs: Sequence[tuple[str, object]]) -> str:
    return "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in pairs)


def render_summary(lang: str, facts: Mapping[str, Any], files: Sequence[str]) -> bytes:
    """The summary page in `lang` ("vi" or "en") from the export's facts."""
    t = LABELS[lang]
    goldens = t["ok"] if facts["goldens_ok"] else t["fail"]
    pairs: list[tuple[str, object]] = [
        (t["system"], f"{facts['system_name']} ({facts['system_id']})"),
        (t["level"], facts["level"] if facts["level"] is not None else "-"),
        (t["regime"], f"{facts['regime_title'][lang]} ({facts['regime_id']})"),
        (t["period"], f"{facts['from']} — {facts['to']}"),
        (t["collector"], facts["collector"]),
        (t["created"], facts["created"]),
        (t["events"], facts["events"]),
        (t["agents"], facts["agents"]),
        (t["gaps"], facts["gaps"]),
        (t["alerts"], facts["alerts"]),
        (t["incidents"], facts["incidents"]),
        (t["findings"], facts["findings"]),
        (t["rules"], facts["rule_files"]),
        (t["goldens"], goldens),
        (t["audit"], facts["audit_records"]),
    ]
    findings = "".join(f"<li>{_e(m)}</li>" for m in facts["finding_messages"][lang])
    listing = "".join(f"<li><code>{_e(n)}</code></li>" for n in files)
    page = (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
        f"<title>{_e(t['title'])}</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "th{text-align:left;padding-right:1em}td,th{border-bottom:1px solid #ddd}</style>"
        f"</head><body><h1>{_e(t['title'])}</h1><table>{_rows(pairs)}</table>"
        f"<h2>{_e(t['findings'])}</h2><ul>{findings}</ul>"
        f"<h2>{_e(t['files'])}</h2><ul>{listing}</ul>"
        f"<p>{_e(t['verify'])}</p></body></html>\n"
    )
    return page.encode()
