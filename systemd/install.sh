#!/usr/bin/env bash
# Installs ferrocached, its systemd units and its settings file.
#
#   systemd/install.sh                    # build (release) and install under /usr/local
#   PREFIX=/usr DESTDIR=/tmp/pkg systemd/install.sh --no-build   # stage a package tree
#
# PREFIX (default /usr/local) holds the binary ($PREFIX/bin/ferrocached); units go to
# $UNITDIR (default /etc/systemd/system, or $PREFIX/lib/systemd/system when PREFIX=/usr), with
# ExecStart rewritten to the installed binary; the settings file goes to
# /etc/default/ferrocached and is never overwritten. Everything is placed under DESTDIR when set.
# After a real install: systemctl daemon-reload && systemctl enable --now ferrocached
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
top="$(dirname "$here")"
PREFIX="${PREFIX:-/usr/local}"
DESTDIR="${DESTDIR:-}"
if [ -z "${UNITDIR:-}" ]; then
  if [ "$PREFIX" = /usr ]; then UNITDIR=/usr/lib/systemd/system; else UNITDIR=/etc/systemd/system; fi
fi
build=1
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $arg" >&2; exit 64 ;;
  esac
done
# FERROCACHED_BINARY installs an already-built binary from elsewhere (tests, packagers).
binary="${FERROCACHED_BINARY:-$top/target/release/ferrocached}"
if [ "$build" = 1 ] && [ -z "${FERROCACHED_BINARY:-}" ]; then
  cargo build --release --locked -p ferrocached --manifest-path "$top/Cargo.toml"
fi
[ -x "$binary" ] || { echo "install.sh: $binary is missing; build it first" >&2; exit 66; }

install -d "$DESTDIR$PREFIX/bin" "$DESTDIR$UNITDIR" "$DESTDIR/etc/default"
install -m 0755 "$binary" "$DESTDIR$PREFIX/bin/ferrocached"
for unit in ferrocached.service ferrocached@.service ferrocached.socket; do
  sed "s|/usr/local/bin/ferrocached|$PREFIX/bin/ferrocached|g" "$here/$unit" > "$DESTDIR$UNITDIR/$unit"
  chmod 0644 "$DESTDIR$UNITDIR/$unit"
done
if [ ! -e "$DESTDIR/etc/default/ferrocached" ]; then
  install -m 0644 "$here/ferrocached.conf" "$DESTDIR/etc/default/ferrocached"
fi
echo "installed ferrocached to $DESTDIR$PREFIX/bin, units to $DESTDIR$UNITDIR"
