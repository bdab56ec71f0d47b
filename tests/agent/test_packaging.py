"""The agent installs and runs without the collector's dependencies (extras)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COLLECTOR_ONLY = ("starlette", "uvicorn", "psycopg", "sigma")

BLOCKER = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {COLLECTOR_ONLY!r}:
            raise ImportError("collector-only dependency imported by the agent: " + name)
        return None
sys.meta_path.insert(0, Block())
import agent.cli, agent.runtime, agent.shipper, agent.spool, agent.sources.registry
sys.argv = ["canhgac-agent", "example"]
raise SystemExit(agent.cli.main())
"""


def test_agent_imports_no_collector_dependency() -> None:
    out = subprocess.run(
        [sys.executable, "-c", BLOCKER], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "collector:" in out.stdout


def test_core_dependencies_exclude_collector_packages() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(meta["dependencies"]).lower()
    for name in COLLECTOR_ONLY:
        assert name not in core
    assert "psycopg" in " ".join(meta["optional-dependencies"]["collector"])
    assert meta["scripts"] == {
        "canhgac-agent": "agent.cli:main",
        "canhgac-collector": "collector.cli:main",
    }
