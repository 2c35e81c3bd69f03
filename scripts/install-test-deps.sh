#!/usr/bin/env bash
# Installs the Debian packages the test suite talks to: memcached (the reference server),
# libmemcached-tools (memccapable), libmemcached-dev (golden ketama vectors), nutcracker
# (twemproxy), systemd (systemd-analyze, systemd-socket-activate), prometheus (the server that
# scrapes --metrics-listen in daemon/tests/metrics.rs; only its binary is run, on a free port).
# Idempotent: installs only what is missing, so a second run costs a few dpkg queries.
set -euo pipefail
packages=(memcached libmemcached-tools libmemcached-dev nutcracker systemd netcat-openbsd python3-pymemcache prometheus)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
