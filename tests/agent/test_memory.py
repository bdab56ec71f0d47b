"""The malloc arena cap the agent sets at start (agent/memory.py)."""

from __future__ import annotations

import subprocess
import sys


def test_the_arena_cap_is_taken_by_this_c_library() -> None:
    # In a child: the cap is process-wide and must come before threads start.
    script = "from agent.memory import limit_malloc_arenas; print(limit_malloc_arenas())"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
