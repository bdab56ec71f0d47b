"""Write the demo's collector and agent configuration into a state directory."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _receiver_pki(directory: Path) -> Path:
    """The demo receiver's CA, server and client certificates, made once."""
    if not (directory / "client.key").exists():
        from collector.forward.receiver.pki import make_receiver_pki

        make_receiver_pki(directory, ["127.0.0.1", "localhost"], "demo")
    return directory


def main() -> None:
    state = Path(sys.argv[1]).resolve()
    grpc_port = os.environ.get("CANHGAC_GRPC_PORT", "9440")
    http_port = os.environ.get("CANHGAC_HTTP_PORT", "9441")
    enroll_port = os.environ.get("CANHGAC_ENROLL_PORT", "9442")
    receiver_port = os.environ.get("CANHGAC_RECEIVER_PORT", "9443")
    receiver_pki = _receiver_pki(state / "receiver" / "pki")
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
# Layer 4: alerts and incidents go to the demo receiver (a stand-in for the national centre)
# over mutual TLS; `canhgac-collector forward status` shows the queue.
forward:
  destinations:
    - name: national
      kind: national_json
      url: https://127.0.0.1:{receiver_port}/national/v1/reports
      ca_file: {receiver_pki / "ca.pem"}
      client_cert_file: {receiver_pki / "client.pem"}
      client_key_file: {receiver_pki / "client.key"}
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
