"""Certificate renewal in a short-lived child process, so the agent never loads `cryptography`.

Making a key and a certificate request needs `cryptography`, which maps about 8 MB that a
long-running agent would keep for good, to renew once in 60 days. The agent decides that a
renewal is due (identity.py reads the pair with the `ssl` module) and runs
`python -m agent.enroll.renewal` with the collector connection on its standard input; the
child renews (client.renew: new key, Renew over mutual TLS, the pair replaced on disk) and
exits. Its log lines go where the agent's go (inherited stderr); its failure comes back on
stdout as one JSON object and is raised in the agent as an EnrollmentError.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from agent.config import CollectorConnection
from agent.enroll.identity import IdentityFiles
from canhgac.errors import CanhGacError, EnrollmentError
from canhgac.logs import LogFormat, setup_logging

# Beyond the Renew call's own timeout (client.CALL_TIMEOUT_S): the child's start-up.
CHILD_TIMEOUT_S = 90.0


async def renew_in_child(
    conn: CollectorConnection,
    files: IdentityFiles,
    *,
    log_level: str = "info",
    log_format: LogFormat = "text",
) -> None:
    """Renew the pair in `files` through a child process; EnrollmentError when it fails."""
    request = {
        "collector": conn.model_dump(mode="json"),
        "cert_file": str(files.cert_file),
        "key_file": str(files.key_file),
        "log_level": log_level,
        "log_format": log_format,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent.enroll.renewal",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        out, _ = await asyncio.wait_for(
            proc.communicate(json.dumps(request).encode()), CHILD_TIMEOUT_S
        )
    except BaseException:  # timeout, or the agent stopping: the child must not outlive it
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    if proc.returncode == 0:
        return
    try:
        answer = json.loads(out)
        message, reason = str(answer["error"]), str(answer["reason"])
    except (ValueError, KeyError, TypeError):
        message, reason = f"the renewal process ended with status {proc.returncode}", "crashed"
    raise EnrollmentError(message, reason=reason)


async def _renew(request: dict[str, Any]) -> None:
    from agent.enroll.client import renew  # the child's reason to exist: cryptography

    conn = CollectorConnection.model_validate(request["collector"])
    files = IdentityFiles(Path(request["cert_file"]), Path(request["key_file"]))
    await renew(conn, files, files.load())


def main() -> int:
    request = json.loads(sys.stdin.read())
    setup_logging(request["log_level"], request["log_format"])
    try:
        asyncio.run(_renew(request))
    except CanhGacError as exc:
        reason = getattr(exc, "reason", type(exc).__name__)
        print(json.dumps({"error": str(exc), "reason": reason}))
        return 1
    # Anything else is a bug: its traceback goes to the agent's log, and the agent reports
    # the exit status and retries later.
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
