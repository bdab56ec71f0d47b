#!/usr/bin/env bash
# The embedded default on this machine: a collector on SQLite and a local agent, with the
# generated configuration and all state in ./demo-state. Ctrl-C stops both.
# Ports: CANHGAC_GRPC_PORT (9440), CANHGAC_ENROLL_PORT (9442), CANHGAC_HTTP_PORT (9441),
# CANHGAC_RECEIVER_PORT (9443, the demo national centre).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh collector
state=${CANHGAC_DEMO_DIR:-$PWD/demo-state}
mkdir -p "$state"
.venv/bin/python scripts/demo_config.py "$state"
bin=.venv/bin
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

# The demo receiver stands in for the national centre (layer 4), over mutual TLS.
$bin/canhgac-collector receiver run --listen "127.0.0.1:${CANHGAC_RECEIVER_PORT:-9443}" \
  --tls-cert "$state/receiver/pki/receiver.pem" --tls-key "$state/receiver/pki/receiver.key" \
  --client-ca "$state/receiver/pki/ca.pem" --data-dir "$state/receiver/data" \
  2>>"$state/receiver.log" &
pids+=($!)
$bin/canhgac-collector run --config "$state/collector.yaml" 2>>"$state/collector.log" &
pids+=($!)
for _ in $(seq 1 100); do
  $bin/python -c "import sys, urllib.request as u; u.urlopen('http://127.0.0.1:${CANHGAC_HTTP_PORT:-9441}/healthz', timeout=1)" 2>/dev/null && break
  sleep 0.2
done
# Enroll the local agent the way an operator would: a single-use token from the collector,
# then `enroll` on the agent (it makes its own key). Done at every start, so the demo never
# depends on what an earlier run left in $state.
token=$($bin/canhgac-collector tokens create --agent-id demo-agent --ttl 10m --config "$state/collector.yaml")
$bin/canhgac-agent enroll --token-file - --config "$state/agent.yaml" <<<"$token"
unset token
# One registered information system (level 3) holding the demo agent, so alerts carry a system
# and its level, a SOC token can be scoped to it and an evidence bundle exported for it.
if ! $bin/canhgac-collector systems list --config "$state/collector.yaml" 2>/dev/null | grep -q demo-portal; then
  $bin/canhgac-collector systems create --file - --config "$state/collector.yaml" >/dev/null <<'YAML'
id: demo-portal
name: Cổng dịch vụ công (demo)
owner: {name: Ủy ban nhân dân tỉnh (demo)}
operator: {name: Trung tâm Công nghệ thông tin (demo)}
system_type: citizen_business_service
info_classes: [public, personal_basic]
handles_administrative_procedures: true
proposed_level: 3
YAML
  $bin/canhgac-collector systems assets demo-portal --agent demo-agent \
    --config "$state/collector.yaml" >/dev/null
fi
$bin/canhgac-agent run --config "$state/agent.yaml" 2>>"$state/agent.log" &
pids+=($!)
# A console login for the demo, made at every start (the password is new each time), and a
# token a Prometheus server can scrape /metrics with.
if ! $bin/canhgac-collector users list --config "$state/collector.yaml" 2>/dev/null | grep -q '^demo '; then
  demo_password=$($bin/python -c 'import secrets; print(secrets.token_urlsafe(12))')
  $bin/canhgac-collector users add demo --role admin --password-file - \
    --config "$state/collector.yaml" <<<"$demo_password" >/dev/null
  echo "$demo_password" > "$state/console-password"
  chmod 600 "$state/console-password"
  unset demo_password
fi
sleep 2
cat <<MSG

  Canh Gác is running (embedded default: collector on SQLite + a local agent).

  Console      http://127.0.0.1:${CANHGAC_HTTP_PORT:-9441}/      user demo, password in
               $state/console-password
  Metrics      /metrics with a token: $bin/canhgac-collector api-tokens create --role admin \\
                 --config $state/collector.yaml
  Alerts       $bin/canhgac-collector alerts list --config $state/collector.yaml
               $bin/canhgac-collector alerts tail --config $state/collector.yaml
  Agents       $bin/canhgac-collector agents list --config $state/collector.yaml
               $bin/canhgac-collector tokens list --config $state/collector.yaml
  Upstream     $bin/canhgac-collector forward status --config $state/collector.yaml
               received by the demo national centre: $state/receiver/data/national.jsonl
  Logs         $state/collector.log  $state/agent.log  $state/receiver.log

  The agent watches $state/auth.log (and /var/log/auth.log or /var/log/secure
  when it can read them). Try five failed SSH logins:

    for i in 1 2 3 4 5; do echo "\$(date '+%b %e %H:%M:%S') \$(hostname) sshd[4242]: Failed password for invalid user admin from 203.0.113.7 port 5123\$i ssh2" >> $state/auth.log; done

MSG
grep -h "source " "$state/agent.log" | sed 's/^/  agent: /' || true
echo
echo "  Ctrl-C to stop."
wait -n "${pids[@]}"
