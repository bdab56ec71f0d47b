"""Enrolling an agent the way an operator does: `tokens create`, then `canhgac-agent enroll`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def enroll_agent(
    collector_cfg: Path, agent_cfg: Path, agent_id: str, netns: str | None = None
) -> str:
    """Create a token bound to `agent_id` with the collector's CLI and enroll the agent with
    it (inside `netns` when given); returns the enroll command's output."""
    create = ["tokens", "create", "--agent-id", agent_id, "--ttl", "10m"]
    created = subprocess.run(
        [BIN / "canhgac-collector", *create, "--config", str(collector_cfg)],
        capture_output=True,
        check=True,
        timeout=60,
    )
    token = created.stdout.decode().strip()
    command = [
        str(BIN / "canhgac-agent"),
        "enroll",
        "--token-file",
        "-",
        "--config",
        str(agent_cfg),
    ]
    enrolled = subprocess.run(
        (["ip", "netns", "exec", netns] if netns else []) + command,
        input=token.encode(),
        capture_output=True,
        timeout=60,
    )
    output = (enrolled.stdout + enrolled.stderr).decode()
    assert enrolled.returncode == 0, output
    assert f"enrolled as {agent_id}" in output
    return output
