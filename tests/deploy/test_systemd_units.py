"""The systemd units and what the tests assume of them."""

from __future__ import annotations

import shlex
from pathlib import Path

from tests.e2e.harness import AGENT_ENVIRONMENT

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"


def _environment(unit: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in unit.read_text().splitlines():
        if line.startswith("Environment="):
            for item in shlex.split(line.removeprefix("Environment=")):
                key, _, value = item.partition("=")
                out[key] = value
    return out


def test_the_end_to_end_tests_run_the_agent_as_its_unit_does() -> None:
    env = _environment(UNITS / "canhgac-agent.service")
    assert {k: env.get(k) for k in AGENT_ENVIRONMENT} == AGENT_ENVIRONMENT


def test_the_agents_bytecode_cache_is_a_directory_it_may_write() -> None:
    unit = (UNITS / "canhgac-agent.service").read_text()
    prefix = _environment(UNITS / "canhgac-agent.service")["PYTHONPYCACHEPREFIX"]
    cache = next(
        line.removeprefix("CacheDirectory=")
        for line in unit.splitlines()
        if line.startswith("CacheDirectory=")
    )
    assert prefix == f"/var/cache/{cache}"  # ProtectSystem=strict leaves only this writable
