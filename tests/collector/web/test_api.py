"""The REST API (/api/v1) on a real store: payloads, cursors, filters, refusals and scope."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from canhgac.v1 import alert_pb2, events_pb2
from collector.dossiers.model import InformationSystem
from collector.metrics import CollectorMetrics
from collector.storage.base import AgentRecord, Store
from collector.storage.enrollment import AgentCertificate, Enrollment, EnrollmentToken
from collector.storage.sqlite import SqliteStore
from collector.storage.worker import StoreWorker
from collector.web.api import ENDPOINTS
from collector.web.api.ratelimit import install_api_limiter
from collector.web.api.spec import build_spec, spec_text
from collector.web.app import build_app
from collector.web.auth.policy import Principal
from collector.web.auth.tokens import new_api_token
from collector.web.auth.users import ROLES, Role
from tests.collector.storage.conftest import Backend

T0 = 1_700_000_000 * 10**9
SECOND = 10**9
HOUR = 3600 * SECOND
DAY = 24 * HOUR
REPO = Path(__file__).resolve().parents[3]


def system(system_id: str, **changes: Any) -> InformationSystem:
    data: dict[str, Any] = {
        "id": system_id,
        "name": f"Hệ thống {system_id}",
        "owner": {"name": "UBND tỉnh"},
        "operator": {"name": "Trung tâm CNTT&TT"},
        "system_type": "citizen_business_service",
        "info_classes": ["public", "personal_basic"],
        "proposed_level": 2,
    }
    data.update(changes)
    return InformationSystem.model_validate(data)


def make_alert(
    alert_id: str,
    system_id: str,
    *,
    severity: alert_pb2.Severity.ValueType = alert_pb2.SEVERITY_MEDIUM,
    at_ns: int = T0,
    incident_id: str = "",
    rule_id: str = "ssh-brute-force",
    host: str = "",
) -> alert_pb2.Alert:
    return alert_pb2.Alert(
        id=alert_id,
        rule_id=rule_id,
        rule_title="Dò mật khẩu SSH",
        severity=severity,
        created_ns=at_ns + SECOND,
        first_seen_ns=at_ns,
        last_seen_ns=at_ns + SECOND // 2,
        agent_id=f"agent-{system_id or 'none'}",
        host=host or f"web.{system_id or 'none'}.tinh.gov.vn",
        system_id=system_id,
        system_level=3 if system_id else 0,
        category="unauthorized_access",
        mitre_techniques=["T1110"],
        group={"source.ip": "203.0.113.7"},
        event_ids=[f"{alert_id}-e1", f"{alert_id}-e2"],
        summary=f"5 failed logins ({alert_id})",
        event_count=5,
        origin="tinh-thu",
        incident_id=incident_id,
    )


def _enroll(store: Store, agent_id: str, system_id: str, serial: str) -> None:
    store.create_token(
        EnrollmentToken(
            token_id=f"t-{agent_id}",
            secret_hash="ab" * 32,
            created_ns=T0,
            expires_ns=T0 + HOUR,
            system_id=system_id,
        )
    )
    certificate = AgentCertificate(serial, agent_id, T0, T0 + 90 * DAY, T0)
    outcome = store.enroll_agent(
        Enrollment(
            f"t-{agent_id}",
            T0 + 1,
            agent_id,
            f"{agent_id}.tinh.gov.vn",
            "0.3.0",
            system_id,
            certificate,
            exclusive=True,
        )
    )
    assert outcome == "enrolled"


def seed(store: Store) -> None:
    """Two systems (portal, dvc), an agent in each and one in none, alerts and incidents."""
    store.upsert_system(system("portal", approved_level=3))
    store.upsert_system(system("dvc"))
    _enroll(store, "web-01", "portal", "0a01")
    _enroll(store, "db-01", "dvc", "0a02")
    status = events_pb2.AgentStatus(
        version="0.3.0",
        spool_events=7,
        spool_bytes=4096,
        drops=[
            events_pb2.DropCount(source="authlog", reason="rate", count=3),
            events_pb2.DropCount(source="fim", reason="too_large", count=2),
        ],
    )
    web = store.get_agent("web-01")
    assert web is not None
    store.upsert_agent(
        AgentRecord(
            "web-01",
            web.hostname,
            "0.3.0",
            T0,
            T0 + HOUR,
            0,
            "10.0.0.5:5000",
            status.SerializeToString(),
        )
    )
    store.upsert_agent(AgentRecord("lab-01", "lab-01", "0.3.0", T0, T0 + HOUR))
    for a in (
        make_alert("a-p1", "portal", severity=alert_pb2.SEVERITY_HIGH, incident_id="inc-p"),
        make_alert(
            "a-d1",
            "dvc",
            severity=alert_pb2.SEVERITY_CRITICAL,
            at_ns=T0 + SECOND,
            incident_id="inc-d",
        ),
        make_alert("a-x1", "", at_ns=T0 + 2 * SECOND),
        make_alert(
            "a-p2",
            "portal",
            severity=alert_pb2.SEVERITY_LOW,
            at_ns=T0 + 3 * SECOND,
            rule_id="new-listener",
            host="mail.portal.tinh.gov.vn",
        ),
    ):
        assert store.insert_alert(a)
        if a.incident_id:
            store.open_or_attach(a, at_ns=T0 + 5 * SECOND)
    store.triage_alert("a-p1", "acknowledge", actor="u-operator", at_ns=T0 + 10 * SECOND)
    store.triage_alert(
        "a-p1", "comment", actor="u-operator", at_ns=T0 + 11 * SECOND, comment="đang xem"
    )


@dataclass
class Api:
    app: Starlette
    store: Store
    worker: StoreWorker
    metrics: CollectorMetrics
    now: list[int]
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self) -> TestClient:
        return TestClient(self.app, follow_redirects=False)

    def get(self, who: str, path: str, **params: Any) -> Any:
        answer = self.client().get(path, params=params, headers=bearer(self.tokens[who]))
        return answer

    def refused(self, reason: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "canhgac_collector_http_refused_total", {"reason": reason}
        )
        return value or 0.0


def bearer(text: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {text}"}


def make_api(store: Store, state_dir: Path) -> Api:
    """The real app on `store` (migrated, seeded), with a token per role and scoped ones."""
    now = [T0 + HOUR]
    worker = StoreWorker(store)
    metrics = CollectorMetrics.create(CollectorRegistry())
    app = build_app(
        "Tỉnh Thử", worker, metrics, lambda: True, state_dir=state_dir, clock=lambda: now[0]
    )
    api = Api(app, store, worker, metrics, now)
    scoped: dict[str, tuple[Role, tuple[str, ...]]] = {
        **{role: (role, ()) for role in ROLES},
        "soc": ("soc", ("portal",)),
        "soc-dvc": ("soc", ("dvc",)),
        "soc-none": ("soc", ()),
        "assessor": ("assessor", ("portal",)),
    }
    for name, (role, systems) in scoped.items():
        text, record = new_api_token(role, T0, 30 * DAY, systems=systems)
        store.create_api_token(record)
        api.tokens[name] = text
    return api


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    store = SqliteStore(tmp_path / "c.db")
    store.migrate()
    seed(store)
    made = make_api(store, tmp_path / "state")
    yield made
    made.worker.close()


def ids(body: dict[str, Any]) -> list[str]:
    return [item.get("id") or item.get("agent_id") for item in body["items"]]


# --- payloads -------------------------------------------------------------------------------


def test_alert_list_is_newest_first_with_every_field(api: Api) -> None:
    body = api.get("admin", "/api/v1/alerts").json()
    assert ids(body) == ["a-p2", "a-x1", "a-d1", "a-p1"]
    assert body["prev_cursor"] is None  # fewer than the limit: nothing older
    assert body["items"][3] == {
        "id": "a-p1",
        "rule_id": "ssh-brute-force",
        "rule_title": "Dò mật khẩu SSH",
        "severity": "high",
        "severity_level": 4,
        "status": "acknowledged",
        "created": "2023-11-14T22:13:21Z",
        "created_ns": T0 + SECOND,
        "first_seen": "2023-11-14T22:13:20Z",
        "first_seen_ns": T0,
        "last_seen": "2023-11-14T22:13:20.500000Z",
        "last_seen_ns": T0 + SECOND // 2,
        "agent_id": "agent-portal",
        "host": "web.portal.tinh.gov.vn",
        "system_id": "portal",
        "system_level": 3,
        "category": "unauthorized_access",
        "mitre_techniques": ["T1110"],
        "group": {"source.ip": "203.0.113.7"},
        "event_ids": ["a-p1-e1", "a-p1-e2"],
        "event_count": 5,
        "summary": "5 failed logins (a-p1)",
        "origin": "tinh-thu",
        "incident_id": "inc-p",
    }


def test_alert_detail_has_its_triage_history(api: Api) -> None:
    body = api.get("soc", "/api/v1/alerts/a-p1").json()
    assert body["alert"]["id"] == "a-p1"
    assert [(t["action"], t["status_after"], t["actor"]) for t in body["triage"]] == [
        ("acknowledge", "acknowledged", "u-operator"),
        ("comment", "acknowledged", "u-operator"),
    ]
    assert body["triage"][1]["comment"] == "đang xem"
    assert body["triage"][0]["at_ns"] == T0 + 10 * SECOND
    assert body["triage"][0]["at"] == "2023-11-14T22:13:30Z"
    assert body["triage"][0]["until"] is None


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"min_severity": "high"}, ["a-d1", "a-p1"]),
        ({"min_severity": "informational"}, ["a-p2", "a-x1", "a-d1", "a-p1"]),
        ({"system_id": "dvc"}, ["a-d1"]),
        ({"rule_id": "new-listener"}, ["a-p2"]),
        ({"status": "acknowledged"}, ["a-p1"]),
        ({"status": "resolved"}, []),
        ({"host": "mail.portal.tinh.gov.vn"}, ["a-p2"]),
        ({"system_id": "portal", "min_severity": "medium"}, ["a-p1"]),
    ],
)
def test_alert_filters(api: Api, params: dict[str, str], expected: list[str]) -> None:
    assert ids(api.get("admin", "/api/v1/alerts", **params).json()) == expected


def test_pulling_forwards_sees_each_alert_once_while_alerts_arrive(api: Api) -> None:
    first = api.get("admin", "/api/v1/alerts", limit=1).json()
    assert ids(first) == ["a-p2"]
    cursor = first["next_cursor"]
    seen: list[str] = []
    inserted: list[str] = []
    for round_ in range(5):
        for i in range(3):
            alert_id = f"n-{round_}-{i}"
            api.store.insert_alert(make_alert(alert_id, "portal", at_ns=T0 + HOUR + round_))
            inserted.append(alert_id)
        page = api.get("admin", "/api/v1/alerts", after=cursor, limit=2).json()
        seen += ids(page)
        cursor = page["next_cursor"]
    while True:  # drain
        page = api.get("admin", "/api/v1/alerts", after=cursor, limit=2).json()
        if not page["items"]:
            assert page["next_cursor"] == cursor  # an empty page keeps the place
            break
        seen += ids(page)
        cursor = page["next_cursor"]
    assert seen == inserted


def test_a_scoped_poller_sees_only_its_systems_new_alerts(api: Api) -> None:
    empty = api.get("soc", "/api/v1/alerts", system_id="portal", min_severity="critical").json()
    assert empty["items"] == []
    cursor = empty["next_cursor"]  # given even when nothing matched yet
    api.store.insert_alert(make_alert("late-d", "dvc", severity=alert_pb2.SEVERITY_CRITICAL))
    api.store.insert_alert(make_alert("late-p", "portal", severity=alert_pb2.SEVERITY_CRITICAL))
    page = api.get(
        "soc", "/api/v1/alerts", after=cursor, system_id="portal", min_severity="critical"
    ).json()
    assert ids(page) == ["late-p"]


def test_paging_back_with_prev_cursor(api: Api) -> None:
    first = api.get("admin", "/api/v1/alerts", limit=3).json()
    assert ids(first) == ["a-p2", "a-x1", "a-d1"]
    assert first["prev_cursor"]
    older = api.get("admin", "/api/v1/alerts", limit=3, before=first["prev_cursor"]).json()
    assert ids(older) == ["a-p1"]
    assert older["prev_cursor"] is None
    newer = api.get("admin", "/api/v1/alerts", after=older["next_cursor"]).json()
    assert ids(newer) == ["a-d1", "a-x1", "a-p2"]
    # after wins over before, as in AlertQuery.
    both = api.get("admin", "/api/v1/alerts", after=older["next_cursor"], before="a1").json()
    assert ids(both) == ids(newer)


def test_incidents_are_paged_by_detection_time(api: Api) -> None:
    first = api.get("admin", "/api/v1/incidents", limit=1).json()
    assert ids(first) == ["inc-p"]
    item = first["items"][0]
    assert item["system_id"] == "portal"
    assert item["detected_ns"] == T0
    assert item["detected_at"] == "2023-11-14T22:13:20Z"
    assert item["alert_ids"] == ["a-p1"]
    assert item["status"] == "not_handled"
    second = api.get("admin", "/api/v1/incidents", limit=1, after=first["next_cursor"]).json()
    assert ids(second) == ["inc-d"]
    assert second["next_cursor"] is None
    everything = api.get("admin", "/api/v1/incidents").json()
    assert ids(everything) == ["inc-p", "inc-d"]
    assert everything["next_cursor"] is None
    assert ids(api.get("admin", "/api/v1/incidents", system_id="dvc").json()) == ["inc-d"]


def test_incident_detail_has_the_full_record(api: Api) -> None:
    body = api.get("soc", "/api/v1/incidents/inc-p").json()
    assert body["incident"]["id"] == "inc-p"
    assert body["record"]["id"] == "inc-p"
    assert body["record"]["category"] == "unauthorized_access"
    assert body["record"]["alert_ids"] == ["a-p1"]


def test_agents_show_enrollment_and_health(api: Api) -> None:
    body = api.get("admin", "/api/v1/agents").json()
    assert ids(body) == ["db-01", "lab-01", "web-01"]
    web = body["items"][2]
    assert web["system_id"] == "portal"
    assert web["enrollment_status"] == "enrolled"
    assert web["cert_not_after_ns"] == T0 + 90 * DAY
    assert web["last_seen_ns"] == T0 + HOUR
    assert web["last_seen"] == "2023-11-14T23:13:20Z"
    assert web["status_reported"] is True
    assert (web["spool_events"], web["spool_bytes"], web["drops_total"]) == (7, 4096, 5)
    assert web["drops"] == [
        {"source": "authlog", "reason": "rate", "count": 3},
        {"source": "fim", "reason": "too_large", "count": 2},
    ]
    lab = body["items"][1]
    assert (lab["system_id"], lab["enrollment_status"], lab["status_reported"]) == ("", "", False)
    assert lab["cert_not_after"] is None


def test_systems_show_level_and_dossier_status(api: Api) -> None:
    body = api.get("operator", "/api/v1/systems").json()
    assert body["items"] == [
        {
            "id": "dvc",
            "name": "Hệ thống dvc",
            "level": 2,
            "approved_level": None,
            "proposed_level": 2,
            "dossier_status": "draft",
            "regime": "vn-2026",
        },
        {
            "id": "portal",
            "name": "Hệ thống portal",
            "level": 3,
            "approved_level": 3,
            "proposed_level": 2,
            "dossier_status": "draft",
            "regime": "vn-2026",
        },
    ]


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "location"),
    [
        ("/api/v1/alerts", {"limit": "0"}, "limit"),
        ("/api/v1/alerts", {"limit": "1001"}, "limit"),
        ("/api/v1/alerts", {"limit": "many"}, "limit"),
        ("/api/v1/alerts", {"after": "not-a-cursor"}, "after"),
        ("/api/v1/alerts", {"before": "i5.inc-p"}, "before"),
        ("/api/v1/alerts", {"min_severity": "severe"}, "min_severity"),
        ("/api/v1/alerts", {"status": "closed"}, "status"),
        ("/api/v1/alerts", {"sytem_id": "dvc"}, "query"),
        ("/api/v1/incidents", {"after": "a12"}, "after"),
        ("/api/v1/agents", {"limit": "5"}, "query"),
    ],
)
def test_bad_input_is_a_counted_400(
    api: Api, path: str, params: dict[str, str], location: str
) -> None:
    answer = api.get("soc", path, **params)
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"] == "bad_request"
    assert location in body["detail"]
    assert api.refused("bad_request") == 1
    assert api.get("soc", path).status_code == 200  # and it keeps serving


def test_unknown_ids_are_a_counted_404(api: Api) -> None:
    for path in ("/api/v1/alerts/nope", "/api/v1/incidents/nope"):
        answer = api.get("admin", path)
        assert answer.status_code == 404
        assert answer.json()["error"] == "not_found"
    assert api.refused("not_found") == 2


def test_the_api_is_read_only(api: Api) -> None:
    client = api.client()
    for path in ("/api/v1/alerts", "/api/v1/alerts/a-p1", "/api/v1/systems"):
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            answer = client.request(method, path, headers=bearer(api.tokens["admin"]))
            assert answer.status_code == 405, (method, path)


def test_requests_are_rate_limited_per_principal(api: Api) -> None:
    install_api_limiter(api.app, rate=0.5, burst=3)
    for _ in range(3):
        assert api.get("soc", "/api/v1/systems").status_code == 200
    answer = api.get("soc", "/api/v1/systems")
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "2"
    assert answer.json()["error"] == "rate_limited"
    assert api.refused("rate_limited") == 1
    assert api.get("admin", "/api/v1/systems").status_code == 200  # another principal
    api.now[0] += 2 * SECOND  # one request's worth refilled
    assert api.get("soc", "/api/v1/systems").status_code == 200
    assert api.get("soc", "/api/v1/systems").status_code == 429


def test_rate_limits_are_configured_and_validated() -> None:
    from pydantic import ValidationError

    from collector.config import HttpConfig

    config = HttpConfig(api_rate=5, api_burst=10)
    assert (config.api_rate, config.api_burst) == (5.0, 10)
    assert (HttpConfig().api_rate, HttpConfig().api_burst) == (20.0, 100)
    for bad in ({"api_rate": 0}, {"api_burst": 0}, {"api_rate": "fast"}):
        with pytest.raises(ValidationError):
            HttpConfig.model_validate(bad)


# --- scope ----------------------------------------------------------------------------------


def test_principal_scope() -> None:
    assert Principal("a", "admin", "token").scope() is None
    assert Principal("o", "operator", "token", frozenset({"x"})).scope() is None
    soc = Principal("s", "soc", "token", frozenset({"portal"}))
    assert soc.scope() == frozenset({"portal"})
    assessor = Principal("m", "assessor", "session", frozenset({"portal"}))
    assert assessor.can_see_system("portal")
    assert not assessor.can_see_system("dvc")
    assert not Principal("n", "assessor", "session").can_see_system("")


def check_scope(api: Api) -> None:
    """A soc or assessor of portal sees nothing of dvc (nor of unmapped hosts), anywhere."""
    unknown = {
        path: api.get("admin", path).json()
        for path in ("/api/v1/alerts/nope", "/api/v1/incidents/nope")
    }
    for who in ("soc", "assessor"):
        assert ids(api.get(who, "/api/v1/alerts").json()) == ["a-p2", "a-p1"]
        assert ids(api.get(who, "/api/v1/alerts", system_id="dvc").json()) == []
        assert ids(api.get(who, "/api/v1/alerts", min_severity="critical").json()) == []
        assert ids(api.get(who, "/api/v1/incidents").json()) == ["inc-p"]
        assert ids(api.get(who, "/api/v1/incidents", system_id="dvc").json()) == []
        assert ids(api.get(who, "/api/v1/agents").json()) == ["web-01"]
        assert ids(api.get(who, "/api/v1/systems").json()) == ["portal"]
        for path in ("/api/v1/alerts/a-d1", "/api/v1/alerts/a-x1", "/api/v1/incidents/inc-d"):
            answer = api.get(who, path)
            assert answer.status_code == 404, (who, path)
            # Exactly the answer for an id that does not exist: nothing leaks.
            assert answer.json() == unknown[path.rsplit("/", 1)[0] + "/nope"]
        assert api.get(who, "/api/v1/alerts/a-p1").status_code == 200
        assert api.get(who, "/api/v1/incidents/inc-p").status_code == 200
    assert ids(api.get("soc-dvc", "/api/v1/alerts").json()) == ["a-d1"]
    assert ids(api.get("soc-dvc", "/api/v1/systems").json()) == ["dvc"]
    for path in ("/api/v1/alerts", "/api/v1/incidents", "/api/v1/agents", "/api/v1/systems"):
        assert api.get("soc-none", path).json()["items"] == [], path  # empty scope: nothing
        assert len(api.get("operator", path).json()["items"]) >= 2, path
    assert api.get("soc-none", "/api/v1/alerts/a-p1").status_code == 404


def test_a_soc_never_sees_another_contracts_data(api: Api) -> None:
    check_scope(api)


def test_scope_holds_on_every_backend(backend: Backend, tmp_path: Path) -> None:
    store = backend.open_store()
    store.migrate()
    seed(store)
    made = make_api(store, tmp_path / "state")
    try:
        check_scope(made)
    finally:
        made.worker.close()


# --- the published spec ---------------------------------------------------------------------


def test_committed_openapi_spec_is_what_the_code_generates(api: Api) -> None:
    generated = spec_text(build_spec(ENDPOINTS))
    committed = (REPO / "docs/api/openapi.json").read_text(encoding="utf-8")
    assert committed == generated, (
        "docs/api/openapi.json is stale: .venv/bin/python -m collector.web.api "
        "> docs/api/openapi.json"
    )
    served = api.client().get("/api/v1/openapi.json")  # public: no token
    assert served.status_code == 200
    assert served.json() == json.loads(generated)


def test_spec_describes_every_api_route(api: Api) -> None:
    spec = build_spec(ENDPOINTS)
    routes = {r.path for r in api.app.routes if isinstance(r, Route) and r.path.startswith("/api/")}
    assert set(spec["paths"]) == routes
    for path, item in spec["paths"].items():
        assert set(item) == {"get"}, path
        if path != "/api/v1/openapi.json":
            assert {"400", "401", "429"} <= set(item["get"]["responses"]), path


def test_the_cli_gives_an_assessor_token_its_systems(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from collector.config import load
    from tests.collector.web.test_auth_cli import run

    config = tmp_path / "cli.yaml"
    config.write_text(f"state_dir: {tmp_path / 'cli-state'}\n")
    (tmp_path / "cli-state").mkdir()
    argv = ("api-tokens", "create", "--role", "assessor", "--system", "dvc", "-c", str(config))
    assert run(*argv) == 0
    text = capsys.readouterr().out.strip()
    store = SqliteStore(load(config).sqlite_path())
    try:
        token = store.get_api_token(text.split("_")[1])
        assert token is not None
        assert (token.role, token.systems) == ("assessor", ("dvc",))
        api.store.create_api_token(token)  # the same record, in the served store
    finally:
        store.close()
    api.tokens["cli-assessor"] = text
    assert ids(api.get("cli-assessor", "/api/v1/alerts").json()) == ["a-d1"]
    assert api.get("cli-assessor", "/api/v1/alerts/a-p1").status_code == 404


def test_an_agent_is_scoped_by_the_system_its_assets_put_it_in(api: Api) -> None:
    from collector.dossiers.model import Assets

    # lab-01 was enrolled for no system; listing it among dvc's assets puts it in dvc, as
    # detection sees it: dvc's SOC now sees it, portal's does not.
    assert "lab-01" not in ids(api.get("soc-dvc", "/api/v1/agents").json())
    api.store.set_assets("dvc", Assets(agents=("lab-01",)))
    lab = [
        a for a in api.get("soc-dvc", "/api/v1/agents").json()["items"] if a["agent_id"] == "lab-01"
    ]
    assert [a["system_id"] for a in lab] == ["dvc"]
    assert "lab-01" not in ids(api.get("soc", "/api/v1/agents").json())
