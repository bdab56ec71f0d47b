"""Review of the HTTP side: refusals of hostile input, scope of unassigned alerts, CSP on
every HTML page, labelled local times, and bounded, re-checked live streams."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from collector.audit.model import AuditEntry
from collector.storage.sqlite import SqliteStore
from collector.web.auth.tokens import new_api_token
from collector.web.live import STREAMS_PER_OWNER, AlertFilter, sse_stream
from tests.collector.storage.test_contract import auth_event
from tests.collector.web.test_api import DAY, T0, Api, bearer, make_api, seed
from tests.collector.web.test_console import XSS, Console, make_alert, make_console, stored
from tests.e2e.harness import wait_for


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    """test_api's fixture: two systems, scoped tokens, alerts with and without a system."""
    store = SqliteStore(tmp_path / "c.db")
    store.migrate()
    seed(store)
    made = make_api(store, tmp_path / "state")
    yield made
    made.worker.close()


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    """test_console's fixture: its app, users and 61 alerts (one with hostile text)."""
    yield from make_console(tmp_path)


# --- console: hostile parameters -----------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/alerts?before=²", "/audit?before=²", "/alerts?before=" + "9" * 40]
)
def test_odd_digits_in_cursors_do_not_break_pages(console: Console, path: str) -> None:
    client = console.client("operator", "en")
    assert client.get(path).status_code == 200


@pytest.mark.parametrize(
    "target", ["/\t/evil.example", "/\\evil.example", "https://evil.example", "//evil.example"]
)
def test_language_switch_never_leaves_the_site(console: Console, target: str) -> None:
    client = console.client("operator")
    location = client.get("/lang", params={"to": "en", "next": target}).headers["location"]
    assert location.startswith("/")
    assert not location.startswith("//")
    # Starlette percent-encodes the tab, so a browser cannot read "/\t/x" as "//x".
    assert "\t" not in location


def test_every_event_and_alert_value_is_escaped(console: Console) -> None:
    event = auth_event("evil-1")
    event.auth.user = XSS
    event.original = XSS
    event.labels["x"] = XSS
    console.store.store_batch("web-01", 2, [event], T0)
    hostile = make_alert(
        7,
        id="al-evil",
        rule_title=XSS,
        host=XSS,
        summary=XSS,
        category=XSS,
        incident_id="inc-evil",
    )
    hostile.event_ids[:] = ["evil-1"]
    hostile.group[XSS] = XSS
    console.store.insert_alert(hostile)
    console.store.open_or_attach(hostile, at_ns=T0)
    client = console.client("operator", "en")
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/alerts").text)
    assert csrf
    for data in ({"action": "comment", "comment": XSS}, {"action": "assign", "assignee": XSS}):
        client.post("/alerts/al-evil/triage", data={"csrf": csrf.group(1), **data})
    for path in ("/alerts", "/alerts/al-evil", "/incidents", "/incidents/inc-evil", "/audit"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert XSS not in page.text, path
        assert "&lt;script&gt;" in page.text, path


# --- CSP ------------------------------------------------------------------------------------


def test_login_page_has_a_csp(console: Console) -> None:
    client = TestClient(console.app)
    for answer in (client.get("/login"), client.post("/login", data={"csrf": "x"})):
        assert "text/html" in answer.headers["content-type"]
        csp = answer.headers.get("content-security-policy", "")
        assert "frame-ancestors 'none'" in csp
        assert "default-src 'none'" in csp


# --- times ----------------------------------------------------------------------------------


def test_console_times_say_their_zone(console: Console) -> None:
    client = console.client("operator", "en")
    page = client.get("/alerts/al-001").text
    # al-001 was created at T0 + 1 s = 2024-11-19 07:06:41 UTC, 14:06:41 in Hà Nội.
    assert "2024-11-19 14:06:41 (UTC+7)" in page


# --- API scope ------------------------------------------------------------------------------


def test_a_scope_holding_an_empty_system_never_sees_unassigned_alerts(api: Api) -> None:
    text, record = new_api_token("soc", T0, 30 * DAY, systems=("", "portal"))
    api.store.create_api_token(record)
    client = api.client()
    listed = client.get("/api/v1/alerts", headers=bearer(text)).json()
    assert sorted(i["id"] for i in listed["items"]) == ["a-p1", "a-p2"]
    assert client.get("/api/v1/alerts/a-x1", headers=bearer(text)).status_code == 404
    agents = client.get("/api/v1/agents", headers=bearer(text)).json()
    assert all(a["system_id"] == "portal" for a in agents["items"])


@pytest.mark.parametrize(
    "params",
    [
        {"after": "i-9999999999999999999.x"},
        {"after": "i9999999999999999999.x"},
        {"after": "i0.x", "limit": "1000"},
    ],
)
def test_extreme_incident_cursors_are_answered(api: Api, params: dict[str, Any]) -> None:
    assert api.get("admin", "/api/v1/incidents", **params).status_code == 200


# --- live stream ----------------------------------------------------------------------------


def test_a_user_holds_a_bounded_number_of_streams(console: Console) -> None:
    hub = console.hub
    subs = [hub.subscribe(AlertFilter(), "u-operator") for _ in range(STREAMS_PER_OWNER)]
    assert not hub.has_room("u-operator")
    assert hub.has_room("u-admin")
    client = console.client("operator")
    answer = client.get("/alerts/stream")
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "60"
    sample = console.metrics.errors.labels(stage="console", error_type="too_many_streams")
    assert sample._value.get() == 1
    hub.unsubscribe(subs[0])
    assert hub.has_room("u-operator")


def test_a_stream_ends_when_its_caller_loses_access(console: Console) -> None:
    async def run() -> None:
        allowed = [True]

        async def still_allowed() -> bool:
            return allowed[0]

        sub = console.hub.subscribe(AlertFilter(), "u-operator")
        stream = sse_stream(
            sub, lambda s: s.alert.id, heartbeat_s=0.01, still_allowed=still_allowed, recheck_s=0
        )
        assert await anext(stream) == "retry: 5000\n\n"
        console.hub.publish([stored(1)])
        assert await anext(stream) == "event: alert\nid: 1\ndata: al-001\n\n"
        allowed[0] = False
        console.hub.publish([stored(3)])
        with pytest.raises(StopAsyncIteration):
            await anext(stream)
        assert console.hub.clients == 0

    asyncio.run(run())


def test_a_disabled_users_open_stream_gets_no_more_alerts(console: Console) -> None:
    hub = console.hub
    ended = threading.Event()

    def disable_then_publish(client: TestClient) -> None:
        portal = client.portal
        assert portal is not None  # inside `with client`: the app's loop runs
        wait_for(lambda: hub.clients > 0, 10, "the page's stream to subscribe")
        console.store.disable_user("u-operator", T0 + 1)
        portal.call(lambda: hub.publish([stored(5)]))
        # Only so that a stream that does not end by itself cannot hang the test.
        if not ended.wait(2):
            portal.call(hub.close)

    with console.client("operator", "en") as client:
        helper = threading.Thread(target=disable_then_publish, args=(client,), daemon=True)
        helper.start()
        with client.stream("GET", "/alerts/stream") as answer:
            assert answer.status_code == 200
            body = "".join(answer.iter_text())
        ended.set()
        helper.join(timeout=5)
    assert "al-005" not in body
    assert hub.clients == 0


# --- audit ----------------------------------------------------------------------------------


def test_a_rare_audit_filter_reads_a_bounded_part_per_page(console: Console) -> None:
    entries = [AuditEntry("cli:root", f"test.{n}", f"t{n}") for n in range(6000)]
    for n, entry in enumerate(entries):
        console.store.append_audit(entry, at_ns=T0 + n)
    console.store.append_audit(AuditEntry("cli:root", "rare.one", "x"), at_ns=T0)  # seq 6001
    console.store.append_audit(AuditEntry("cli:root", "test.late", "y"), at_ns=T0)
    client = console.client("operator")
    pages, found, url = 0, [], "/audit?action=rare."
    while url:
        page = client.get(url).text
        found += re.findall(r"<code>(rare\.[a-z]+)</code>", page)
        pages += 1
        older = re.search(r'href="(/audit\?[^"]+)" rel="next"', page)
        url = older.group(1).replace("&amp;", "&") if older else ""
    assert found == ["rare.one"]
    assert pages > 1  # the log was read in parts, each page with a link to go on
