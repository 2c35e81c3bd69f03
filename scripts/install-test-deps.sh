#!/usr/bin/env bash
# Installs the Debian packages the test suite talks to: memcached (the reference server, and
# memcached-tool), libmemcached-tools (memccapable), libmemcached-dev (golden ketama vectors),
# nutcracker (twemproxy), systemd (systemd-analyze, systemd-socket-activate), pymemcache, pylibmc
# and Django for the client tests, postgresql (the db-cache example's end-to-end tests start
# their own server; util-linux's setpriv runs it as nobody), chromium and chromium-driver (the
# sessions example's browser test), openssl (test CAs and s_client for the TLS tests), sasl2-bin (saslpasswd2: the
# sasldb memcached -S is given in daemon/tests/sasl.rs), prometheus (the server that scrapes
# --metrics-listen in daemon/tests/metrics.rs; only its binary is run, on a free port); then a venv under target/ with what PyPI alone has
# (django-elasticache, whose version parser the tests run). Idempotent: installs only what is
# missing, so a second run costs a few dpkg queries and one python start.
set -euo pipefail
packages=(memcached libmemcached-tools libmemcached-dev nutcracker systemd netcat-openbsd python3-pymemcache
  python3-pylibmc python3-django python3-venv postgresql util-linux chromium chromium-driver openssl
  prometheus sasl2-bin)
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

# The venv sees Debian's python3 packages (pymemcache, Django). django-elasticache is installed
# without its declared dependencies: pylibmc serves only its cache backend, which the tests do
# not use, and would need a C build.
venv="$(cd "$(dirname "$0")/.." && pwd)/target/test-venv"
if ! "$venv/bin/python" -c "import django_elasticache.cluster_utils" 2>/dev/null; then
  /usr/bin/python3 -m venv --system-site-packages "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps django-elasticache==1.0.3
fi
