"""A real Prometheus scraping a real collector's /metrics with an API token.

Starts `canhgac-collector run` with its HTTP side on loopback, creates an admin token with
`canhgac-collector api-tokens create`, starts `prometheus` (Debian's package; its own TSDB
directory and port) scraping every second with the token in a credentials file and the shipped
alerting rules loaded, has an agent ship known auth lines, and waits until PromQL sees them.
Also: /metrics without (or with a wrong) token is 401, `promtool check metrics` accepts the
exposition, `promtool check rules/config` accept deploy/prometheus/, and the Grafana dashboard
and the alerting rules name only metrics the collector exposes.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.agent_health import AgentHealthMetrics
from collector.metrics import CollectorMetrics
from tests.requirements import require

from .harness import BIN, ROOT, System, free_port, port_open, wait_for, write_lines

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

DEPLOY = ROOT / "deploy"
ALERTS = DEPLOY / "prometheus" / "canhgac-alerts.yml"
PROM_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD = DEPLOY / "grafana" / "canhgac-dashboard.json"
LINES = 300
METRIC_RE = re.compile(r"\bcanhgac_[a-z0-9_]+\b")
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
}


def tool(name: str) -> str:
    """The path of a Prometheus program, or skip (fail under CI=true) with how to install it."""
    path = shutil.which(name)
    require(path is not None, f"{name} (apt-get install prometheus)")
    assert path is not None
    return path


def exposed_names() -> set[str]:
    """Every sample name the collector's metrics can expose (labelled ones included)."""
    names: set[str] = set()
    registry = CollectorMetrics.create().registry
    AgentHealthMetrics.create(registry)  # registered beside them by the running collector
    for family in registry.collect():
        names.update(family.name + s for s in SUFFIXES[family.type])
    return names


def http_get(url: str, token: str | None = None, timeout: float = 5) -> tuple[int, bytes]:
    req = urllib.request.Request(url)  # noqa: S310  # loopback URLs this test built
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# --- static checks of deploy/ -------------------------------------------------------------


def test_promtool_accepts_the_alerting_rules() -> None:
    out = subprocess.run(
        [tool("promtool"), "check", "rules", str(ALERTS)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_promtool_accepts_the_scrape_config(tmp_path: Path) -> None:
    # promtool insists the credentials file exists: check a copy pointing at one that does.
    token = tmp_path / "canhgac.token"
    token.write_text("cg_placeholder\n")
    config = yaml.safe_load(PROM_CONFIG.read_text())
    (job,) = config["scrape_configs"]
    assert job["authorization"]["type"] == "Bearer"
    job["authorization"]["credentials_file"] = str(token)
    shutil.copy(ALERTS, tmp_path / ALERTS.name)
    copy = tmp_path / "prometheus.yml"
    copy.write_text(yaml.safe_dump(config))
    out = subprocess.run(
        [tool("promtool"), "check", "config", str(copy)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 rule files found" in out.stdout


def test_alerting_rules_name_only_exposed_metrics() -> None:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert {"CanhGacRuleErrors", "CanhGacHighSeverityFindings", "CanhGacCorrelationEvictions"} <= {
        r["alert"] for r in rules
    }
    known = exposed_names()
    for rule in rules:
        unknown = set(METRIC_RE.findall(rule["expr"])) - known
        assert not unknown, f"{rule['alert']}: {sorted(unknown)}"


def test_dashboard_panels_name_only_exposed_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    known = exposed_names()
    panels = dashboard["panels"]
    assert len(panels) >= 7
    used: set[str] = set()
    for panel in panels:
        exprs = [t["expr"] for t in panel["targets"]]
        assert exprs, panel["title"]
        for expr in exprs:
            names = set(METRIC_RE.findall(expr))
            assert names, f"{panel['title']}: {expr}"
            assert names <= known, f"{panel['title']}: {sorted(names - known)}"
            used |= names
    for family in (
        "canhgac_collector_received_events_total",
        "canhgac_collector_stored_events_total",
        "canhgac_collector_discarded_events_total",
        "canhgac_collector_bus_depth",
        "canhgac_collector_detection_batch_seconds_bucket",
        "canhgac_collector_alerts_total",
        "canhgac_collector_findings",
    ):
        assert family in used, family


# --- a real Prometheus scraping a real collector --------------------------------------------


@pytest.fixture
def system(tmp_path: Path) -> Iterator[System]:
    s = System(tmp_path, http=True)
    try:
        s.start_collector()
        wait_for(lambda: port_open(s.listen_host, s.http_port), 30, "the collector's HTTP side")
        s.start_agent()
        yield s
    finally:
        codes = s.stop()
        assert codes[1] in (0, None), (tmp_path / "collector.log").read_text()[-3000:]


@pytest.fixture
def token(system: System) -> str:
    out = subprocess.run(
        [
            BIN / "canhgac-collector",
            "api-tokens",
            "create",
            "--role",
            "admin",
            "--label",
            "prometheus e2e",
            "--config",
            system.collector_cfg,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.fixture
def prometheus(system: System, token: str, tmp_path: Path) -> Iterator[str]:
    binary = tool("prometheus")
    creds = tmp_path / "prom" / "canhgac.token"
    creds.parent.mkdir()
    creds.write_text(token + "\n")
    creds.chmod(0o600)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [
            {
                "job_name": "canhgac",
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "authorization": {"type": "Bearer", "credentials_file": str(creds)},
                "static_configs": [{"targets": [f"127.0.0.1:{system.http_port}"]}],
            }
        ],
    }
    cfg = tmp_path / "prom" / "prometheus.yml"
    cfg.write_text(yaml.safe_dump(config))
    port = free_port()
    log = open(tmp_path / "prometheus.log", "ab")  # noqa: SIM115  # closed below
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={cfg}",
            f"--storage.tsdb.path={tmp_path / 'prom' / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=log,
        cwd=tmp_path / "prom",
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                return True  # exited: reported below
            return port_open("127.0.0.1", port) and http_get(f"{base}/-/ready")[0] == 200

        wait_for(ready, 60, "prometheus to be ready")
        assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()[-3000:]
        yield base
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def query(base: str, promql: str) -> list[dict[str, Any]]:
    status, body = http_get(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
    assert status == 200, body[:500]
    data = json.loads(body)
    assert data["status"] == "success", data
    result: list[dict[str, Any]] = data["data"]["result"]
    return result


def wait_value(base: str, promql: str, ok: Any, timeout: float = 60) -> float:
    """Poll an instant query until its single value satisfies ok; return that value."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = query(base, promql)
        if len(seen) == 1 and ok(float(seen[0]["value"][1])):
            return float(seen[0]["value"][1])
        time.sleep(0.5)  # Prometheus has nothing to wait on: poll its API, up to the deadline
    raise AssertionError(f"timed out after {timeout} s waiting on {promql!r}: last {seen}")


def test_prometheus_scrapes_the_collector_with_a_token(
    system: System, token: str, prometheus: str, tmp_path: Path
) -> None:
    metrics_url = f"http://127.0.0.1:{system.http_port}/metrics"

    # Without a token, or with a wrong one, /metrics is refused.
    status, _ = http_get(metrics_url)
    assert status == 401
    status, _ = http_get(metrics_url, token="cg_" + "x" * 40)
    assert status == 401

    # With the token: a clean exposition, by promtool's standards.
    status, body = http_get(metrics_url, token=token)
    assert status == 200
    assert b"canhgac_collector_stored_events_total" in body
    lint = subprocess.run(
        [tool("promtool"), "check", "metrics"], input=body, capture_output=True, timeout=60
    )
    assert lint.returncode == 0, (lint.stdout + lint.stderr).decode()
    assert not (lint.stdout + lint.stderr).strip(), (lint.stdout + lint.stderr).decode()

    # Known activity: LINES auth lines shipped by the agent, stored by the collector.
    write_lines(system.log, 0, LINES)
    wait_for(lambda: system.stored_count() >= LINES, 60, f"{LINES} stored events")

    assert wait_value(prometheus, 'up{job="canhgac"}', lambda v: v == 1) == 1
    stored = wait_value(
        prometheus,
        'sum(canhgac_collector_stored_events_total{job="canhgac"})',
        lambda v: v >= LINES,
    )
    assert stored >= LINES
    received = wait_value(
        prometheus,
        'sum(canhgac_collector_received_events_total{job="canhgac"})',
        lambda v: v >= LINES,
    )
    assert received >= stored
    wait_value(prometheus, 'canhgac_collector_agent_streams{job="canhgac"}', lambda v: v == 1)
    wait_value(prometheus, 'canhgac_collector_rules_loaded{job="canhgac"}', lambda v: v > 0)
    # Agents up and down, from the collector's registry: the one agent is up, none down.
    wait_value(prometheus, 'canhgac_collector_agents{job="canhgac",state="up"}', lambda v: v == 1)
    wait_value(prometheus, 'canhgac_collector_agents{job="canhgac",state="down"}', lambda v: v == 0)
    wait_value(
        prometheus,
        'canhgac_collector_agent_spool_events{job="canhgac",stat="max"}',
        lambda v: v >= 0,
    )

    # The shipped alerting rules load and evaluate without errors against the real series.
    def rules_evaluated() -> bool:
        status, body = http_get(f"{prometheus}/api/v1/rules")
        groups = json.loads(body)["data"]["groups"] if status == 200 else []
        rules = [r for g in groups for r in g["rules"]]
        return bool(rules) and all(r.get("lastEvaluation", "").startswith("2") for r in rules)

    wait_for(rules_evaluated, 30, "the alerting rules to be evaluated")
    _, body = http_get(f"{prometheus}/api/v1/rules")
    rules = [r for g in json.loads(body)["data"]["groups"] for r in g["rules"]]
    assert len(rules) == len(
        [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    )
    bad = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert not bad, bad
    # Nothing in this healthy system trips the collector-health alerts.
    firing = {r["name"] for r in rules if r["state"] == "firing"}
    assert not firing & {"CanhGacCollectorDown", "CanhGacRuleErrors", "CanhGacNoRulesLoaded"}
