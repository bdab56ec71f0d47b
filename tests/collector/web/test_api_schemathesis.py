"""Schemathesis against the published OpenAPI spec, over a real socket, on a real SQLite file.

The server is the real app (build_app) under uvicorn on loopback, seeded with alerts, agents,
incidents and systems in two systems. Schemathesis's CLI runs every default check (server
errors, status codes, content types, response schemas and headers, positive and negative
data, unsupported methods, ignored auth) with a bounded number of examples, first with an
admin token and then with a soc token scoped to one system.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from collector.storage.sqlite import SqliteStore
from collector.web.api import ENDPOINTS
from collector.web.api.ratelimit import install_api_limiter
from tests.collector.web.test_api import Api, make_api, seed
from tests.requirements import require
from tests.uvicorn_thread import serving

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Api, str]]:
    store = SqliteStore(tmp_path / "collector.db")
    store.migrate()
    seed(store)
    api = make_api(store, tmp_path / "state")
    # Schemathesis sends requests as fast as it can; the limiter has its own test.
    install_api_limiter(api.app, rate=100_000, burst=100_000)
    config = uvicorn.Config(api.app, host="127.0.0.1", port=0, log_config=None, access_log=False)
    try:
        with serving(config) as port:
            yield api, f"http://127.0.0.1:{port}"
    finally:
        api.worker.close()


def run_schemathesis(base: str, token: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    command = [
        str(SCHEMATHESIS if SCHEMATHESIS.exists() else shutil.which("schemathesis")),
        "run",
        f"{base}/api/v1/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--max-examples",
        "15",
        "--seed",
        "1",
        "--workers",
        "1",
        "--no-color",
    ]
    return subprocess.run(  # fixed arguments, our own token
        command,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )


@pytest.mark.integration
def test_the_api_conforms_to_its_spec(served: tuple[Api, str], tmp_path: Path) -> None:
    require(SCHEMATHESIS.exists() or shutil.which("schemathesis") is not None, "schemathesis")
    api, base = served
    for who in ("admin", "soc"):
        result = run_schemathesis(base, api.tokens[who], tmp_path)
        assert result.returncode == 0, f"{who}:\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}"
        # It really tested every operation of the spec, not an empty or unreachable one.
        tested = re.search(r"Tested:\s+(\d+)", result.stdout)
        assert tested, result.stdout
        # (Schemathesis leaves out the spec's own URL.)
        assert int(tested.group(1)) == len(ENDPOINTS), result.stdout
