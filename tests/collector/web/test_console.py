"""The console against the real app and a real SQLite file: pages, filters, paging, triage,
CSRF, roles, escaping, languages and the live stream."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.testclient import TestClient

from canhgac.v1 import alert_pb2
from collector.audit.model import AuditEntry
from collector.metrics import CollectorMetrics
from collector.storage.base import AgentRecord, StoredAlert
from collector.storage.sqlite import SqliteStore
from collector.storage.worker import StoreWorker
from collector.web.app import build_app
from collector.web.auth.passwords import hash_password
from collector.web.auth.users import User
from collector.web.console.i18n import CATALOGS, pick_lang
from collector.web.live import AlertFilter, AlertHub, sse_stream
from tests.collector.dossiers.test_store import system
from tests.collector.storage.test_contract import auth_event
from tests.e2e.harness import wait_for

T0 = 1_732_000_000 * 10**9
PASSWORD = "mật khẩu đủ dài 123"
XSS = "<script>alert(1)</script>"
PAGES = ["/alerts", "/incidents", "/agents", "/systems", "/rules", "/audit"]


def make_alert(n: int, **changes: object) -> alert_pb2.Alert:
    alert = alert_pb2.Alert(
        id=f"al-{n:03d}",
        rule_id="ssh-brute-force" if n % 2 else "new-listener",
        rule_title="SSH brute force" if n % 2 else "New listener",
        severity=alert_pb2.SEVERITY_HIGH if n % 2 else alert_pb2.SEVERITY_LOW,
        created_ns=T0 + n * 10**9,
        host="web-01" if n % 3 else "db-01",
        system_id="dvc-portal",
        summary=f"alert number {n}",
        event_ids=["web-01-1-0"],
        category="unauthorized_access",
        mitre_techniques=["T1110"],
    )
    for key, value in changes.items():
        setattr(alert, key, value)
    return alert


@dataclass
class Console:
    app: Starlette
    store: SqliteStore
    hub: AlertHub
    metrics: CollectorMetrics

    def client(self, role: str, lang: str = "vi") -> TestClient:
        client = TestClient(self.app, follow_redirects=False)
        client.cookies.set("lang", lang)
        page = client.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf
        data = {"username": f"u-{role}", "password": PASSWORD, "csrf": csrf.group(1)}
        assert client.post("/login", data=data).status_code == 303
        return client


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    yield from make_console(tmp_path)


def make_console(tmp_path: Path) -> Iterator[Console]:
    """The app on a SQLite store with a user per console role and soc, and 61 alerts."""
    store = SqliteStore(tmp_path / "c.db")
    store.migrate()
    digest = hash_password(PASSWORD)
    for role in ("operator", "admin", "soc"):
        store.add_user(User(f"u-{role}", role, T0, password_hash=digest))
    store.store_batch("web-01", 1, [auth_event("web-01-1-0")], T0)
    store.upsert_system(system("dvc-portal"))
    store.insert_alerts([make_alert(n) for n in range(1, 61)])
    store.insert_alert(make_alert(99, host=XSS, summary=XSS, severity=alert_pb2.SEVERITY_CRITICAL))
    store.upsert_agent(AgentRecord("web-01", hostname="web-01", version="1.0", last_seen_ns=T0))
    worker = StoreWorker(store)
    metrics = CollectorMetrics.create(CollectorRegistry())
    hub = AlertHub(metrics, queue_limit=3)
    app = build_app(
        "Tỉnh Thử",
        worker,
        metrics,
        lambda: True,
        state_dir=tmp_path / "state",
        clock=lambda: T0 + 100 * 10**9,
        hub=hub,
    )
    yield Console(app, store, hub, metrics)
    worker.close()


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found
    return found.group(1)


def test_catalogs_have_the_same_keys() -> None:
    assert set(CATALOGS["vi"]) == set(CATALOGS["en"])
    assert all(CATALOGS["vi"].values())
    assert all(CATALOGS["en"].values())


def test_language_choice() -> None:
    assert pick_lang(None, None) == "vi"
    assert pick_lang(None, "en-GB,en;q=0.8") == "en"
    assert pick_lang("vi", "en") == "vi"
    assert pick_lang("xx", "fr") == "vi"


@pytest.mark.parametrize("role", ["operator", "admin"])
@pytest.mark.parametrize("lang", ["vi", "en"])
def test_every_page_renders(console: Console, role: str, lang: str) -> None:
    client = console.client(role, lang)
    assert client.get("/").headers["location"] == "/alerts"
    word = {"vi": "Cảnh báo", "en": "Alerts"}[lang]
    for path in [*PAGES, "/alerts/al-001", "/systems/dvc-portal"]:
        page = client.get(path)
        assert page.status_code == 200, path
        assert f'<html lang="{lang}">' in page.text
        assert word in page.text
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "<script>" not in page.text  # no inline script at all
    assert client.get("/alerts/nope").status_code == 404
    assert client.get("/static/console.js").status_code == 200
    assert client.get("/static/..%2Fapp.py").status_code == 404


def test_the_language_switch_sets_the_cookie(console: Console) -> None:
    client = console.client("operator", "vi")
    answer = client.get("/lang?to=en&next=/audit")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/audit"
    assert "lang=en" in answer.headers["set-cookie"]
    assert client.get("/lang?to=en&next=//evil.example").headers["location"] == "/alerts"


def test_others_are_refused(console: Console) -> None:
    anonymous = TestClient(console.app, follow_redirects=False)
    answer = anonymous.get("/alerts", headers={"Accept": "text/html"})
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login")
    soc = console.client("soc")
    assert soc.get("/alerts").status_code == 403


def test_filters_and_pagination(console: Console) -> None:
    client = console.client("operator", "en")
    first = client.get("/alerts").text
    assert first.count('data-href="/alerts/al-') == 50
    assert "al-099" in first
    assert "al-060" in first
    older = re.search(r'href="(/alerts\?before=\d+)" rel="next"', first)
    assert older
    second = client.get(older.group(1).replace("&amp;", "&")).text
    assert second.count('data-href="/alerts/al-') == 11
    assert "al-001" in second
    assert "al-099" not in second
    assert 'rel="next"' not in second
    high = client.get("/alerts?severity=4&host=db-01").text
    rows = re.findall(r'data-href="/alerts/(al-\d+)"', high)
    assert rows
    assert all(int(r[3:]) % 2 == 1 and int(r[3:]) % 3 == 0 for r in rows)
    by_rule = client.get("/alerts?rule=new-listener").text
    assert "SSH brute force" not in by_rule.split("<tbody>")[1]
    assert client.get("/alerts?severity=bogus&status=nope").status_code == 200


def test_triage_changes_the_alert_and_is_audited(console: Console) -> None:
    client = console.client("operator", "en")
    page = client.get("/alerts/al-001").text
    csrf = csrf_of(page)
    for data in (
        {"action": "acknowledge"},
        {"action": "assign", "assignee": "nguyen.van.a"},
        {"action": "comment", "comment": "looking at it"},
        {"action": "suppress", "period": "8h"},
    ):
        answer = client.post("/alerts/al-001/triage", data={"csrf": csrf, **data})
        assert answer.status_code == 303
        assert answer.headers["location"] == "/alerts/al-001"
    stored = console.store.get_alert("al-001")
    assert stored is not None
    assert stored.status == "suppressed"
    detail = client.get("/alerts/al-001").text
    assert "nguyen.van.a" in detail
    assert "looking at it" in detail
    audit = client.get("/audit?action=alert.").text
    for action in ("alert.acknowledge", "alert.assign", "alert.comment", "alert.suppress"):
        assert action in audit
    assert "u-operator" in client.get("/audit?actor=u-operator").text
    bad = client.post("/alerts/al-001/triage", data={"csrf": csrf, "action": "explode"})
    assert bad.status_code == 400
    bad = client.post("/alerts/al-001/triage", data={"csrf": csrf, "action": "assign"})
    assert bad.status_code == 400  # assign without an assignee
    sample = console.metrics.errors.labels(stage="console", error_type="bad_request")
    assert sample._value.get() == 2


def test_triage_without_csrf_is_refused(console: Console) -> None:
    client = console.client("operator")
    answer = client.post("/alerts/al-002/triage", data={"action": "acknowledge"})
    assert answer.status_code == 403
    stored = console.store.get_alert("al-002")
    assert stored is not None
    assert stored.status == "open"


def test_revoke_is_for_admins_with_a_confirm_step(console: Console) -> None:
    operator = console.client("operator")
    csrf = csrf_of(operator.get("/agents").text)
    assert operator.get("/agents/web-01/revoke").status_code == 403
    assert operator.post("/agents/web-01/revoke", data={"csrf": csrf}).status_code == 403
    admin = console.client("admin", "en")
    confirm = admin.get("/agents/web-01/revoke")
    assert confirm.status_code == 200
    assert "Revoke this agent?" in confirm.text
    assert admin.post("/agents/web-01/revoke", data={}).status_code == 403  # no CSRF
    answer = admin.post("/agents/web-01/revoke", data={"csrf": csrf_of(confirm.text)})
    assert answer.status_code == 303
    agent = console.store.get_agent("web-01")
    assert agent is not None
    assert agent.enrollment_status == "revoked"
    audit = admin.get("/audit?action=agent.revoke").text
    assert "agent.revoke" in audit
    assert "u-admin" in audit


def test_audit_pages_newest_first(console: Console) -> None:
    for n in range(120):
        console.store.append_audit(AuditEntry("cli:root", f"test.{n}", f"t{n}"), at_ns=T0 + n)
    client = console.client("operator")
    first = client.get("/audit").text
    seqs = [int(s) for s in re.findall(r"<tr><td>(\d+)</td>", first)]
    assert seqs == list(range(120, 70, -1))
    older = re.search(r'href="(/audit\?before=\d+)" rel="next"', first)
    assert older
    second = client.get(older.group(1)).text
    assert next(int(s) for s in re.findall(r"<tr><td>(\d+)</td>", second)) == 70


def test_hostile_text_is_escaped(console: Console) -> None:
    client = console.client("operator")
    for path in ("/alerts", "/alerts/al-099"):
        page = client.get(path).text
        assert XSS not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def stored(n: int, status: str = "open", **changes: object) -> StoredAlert:
    return StoredAlert(n, status, make_alert(n, **changes))


def test_hub_filters_drops_the_oldest_and_skips_suppressed(console: Console) -> None:
    async def run() -> None:
        hub = console.hub
        sub = hub.subscribe(AlertFilter(min_severity=alert_pb2.SEVERITY_HIGH))
        assert console.metrics.console_clients._value.get() == 1
        hub.publish([stored(1), stored(2), stored(3, "suppressed")])
        first = await sub.next(1)
        assert first is not None
        assert [s.row_id for s in first] == [1]
        assert await sub.next(0.01) == []
        hub.publish([stored(n) for n in (5, 7, 9, 11)])  # queue of 3: the oldest goes
        assert sub.overflowed
        dropped = console.metrics.console_dropped.labels(reason="queue_full")
        assert dropped._value.get() == 1
        hub.unsubscribe(sub)
        assert hub.clients == 0

    asyncio.run(run())


def test_stream_delivers_heartbeats_alerts_reload_and_ends_on_close(console: Console) -> None:
    async def run() -> None:
        hub = console.hub
        sub = hub.subscribe(AlertFilter(host="web-01"))
        stream = sse_stream(sub, lambda s: s.alert.id, heartbeat_s=0.01)
        assert await anext(stream) == "retry: 5000\n\n"
        assert await anext(stream) == ": heartbeat\n\n"
        hub.publish([stored(1), stored(3, host="db-01")])
        assert await anext(stream) == "event: alert\nid: 1\ndata: al-001\n\n"
        hub.close()
        with pytest.raises(StopAsyncIteration):
            await anext(stream)
        assert hub.clients == 0
        late = hub.subscribe(AlertFilter())
        assert await late.next(1) is None  # a closed hub ends new streams at once

    asyncio.run(run())


def test_stream_endpoint_sends_matching_alerts(console: Console) -> None:
    hub = console.hub

    def publish_when_subscribed(client: TestClient) -> None:
        portal = client.portal
        assert portal is not None  # inside `with client`: the app's loop runs
        wait_for(lambda: hub.clients > 0, 10, "the page's stream to subscribe")
        # On the app's own loop: the hub is not thread-safe, like everything on the loop.
        portal.call(lambda: hub.publish([stored(3, host="db-01"), stored(5)]))
        portal.call(hub.close)

    with console.client("operator", "en") as client:
        threading.Thread(target=publish_when_subscribed, args=(client,), daemon=True).start()
        with client.stream("GET", "/alerts/stream?host=web-01") as answer:
            assert answer.headers["content-type"].startswith("text/event-stream")
            body = "".join(answer.iter_text())
    assert '"id": "al-005"' in body
    assert "al-003" not in body
    assert '"severity_name": "high"' in body
    assert hub.clients == 0


def test_incidents_are_paged_newest_first(console: Console) -> None:
    from collector.dossiers.incidents import incident_from_alert

    for n in range(1, 121):
        alert = make_alert(200 + n, incident_id=f"INC-{n:03d}", first_seen_ns=T0 + n * 10**9)
        console.store.create_incident(incident_from_alert(alert), at_ns=T0)
    client = console.client("operator", "en")
    seen: list[str] = []
    url = "/incidents"
    while url:
        page = client.get(url).text
        seen += re.findall(r'<a href="/incidents/(INC-\d+)">', page)
        older = re.search(r'href="(/incidents\?page=\d+)" rel="next"', page)
        url = older.group(1) if older else ""
    assert seen == [f"INC-{n:03d}" for n in range(120, 0, -1)]
    # A page past the end, or garbage, shows a real page instead of failing.
    assert "INC-001" in client.get("/incidents?page=99").text
    assert "INC-120" in client.get("/incidents?page=²").text
