#!/usr/bin/env bash
# Debian packages the test suite needs. Installs only what is missing; needs root for that.
set -euo pipefail
need=()
# (the network sensor, console and metrics issues add nmap, chromium and prometheus here)
command -v ip >/dev/null || need+=(iproute2)
# The network sensor's tests: nmap scans and dig queries between network namespaces, and
# tcpdump, with which scapy compiles BPF filters.
command -v nmap >/dev/null || need+=(nmap)
command -v dig >/dev/null || need+=(dnsutils)
command -v tcpdump >/dev/null || need+=(tcpdump)
# The journald source's tests write real journal files with systemd-journal-remote and read
# them with journalctl.
command -v journalctl >/dev/null || need+=(systemd)
[ -x /lib/systemd/systemd-journal-remote ] || need+=(systemd-journal-remote)
# The metrics tests run a real Prometheus server (their own, on a free port) and promtool.
# Debian's package also enables its own prometheus service; the tests do not use it.
command -v prometheus >/dev/null && command -v promtool >/dev/null || need+=(prometheus)
# The console's browser test drives a real headless Chromium through Playwright.
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${need[*]} (run as root, or install them)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
