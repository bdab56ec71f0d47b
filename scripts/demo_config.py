"""Write the demo's collector and agent configuration into a state directory."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    state = Path(sys.argv[1]).resolve()
    grpc_port = os.environ.get("CANHGAC_GRPC_PORT", "9440")
    http_port = os.environ.get("CANHGAC_HTTP_PORT", "9441")
    enroll_port = os.environ.get("CANHGAC_ENROLL_PORT", "9442")
    (state / "collector").mkdir(parents=True, exist_ok=True)
    (state / "agent").mkdir(parents=True, exist_ok=True)
    demo_log = state / "auth.log"
    demo_log.touch()
    paths = [str(demo_log)] + [p for p in ("/var/log/auth.log", "/var/log/secure")]
    (state / "collector.yaml").write_text(
        f"""name: demo
state_dir: {state / "collector"}
ingest:
  listen: 127.0.0.1:{grpc_port}
  enroll_listen: 127.0.0.1:{enroll_port}
tls:
  mode: auto
  server_names: [localhost, 127.0.0.1]
storage:
  kind: sqlite
detection:
  rule_paths: [{ROOT / "rules"}]
dossiers:
  regime_dir: {ROOT / "rules" / "regimes"}
http:
  listen: 127.0.0.1:{http_port}
"""
    )
    (state / "agent.yaml").write_text(
        f"""agent_id: demo-agent
state_dir: {state / "agent"}
collector:
  address: localhost:{grpc_port}
  enroll_address: localhost:{enroll_port}
  ca_file: {state / "collector" / "pki" / "ca.crt"}
sources:
  authlog:
    paths: [{", ".join(paths)}]
"""
    )


if __name__ == "__main__":
    main()
