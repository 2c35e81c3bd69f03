#!/usr/bin/env bash
# Instructions per request, counted by callgrind: deterministic where ops/s on a shared 2-core
# machine are not, so a small cost (a counter, a clock read) shows up. Runs each given server
# binary (ferrocached, or memcached for the reference) under valgrind --tool=callgrind with
# -t 1, twice: once to start and prefill 10,000 keys of 100 bytes, once to do the same and then
# a fixed number of requests of W1, W2 or W3's mix (shared/BENCHMARKS.md) from
# ferrocache-bench; each server stops on SIGTERM and callgrind writes its totals. The
# difference of the two runs, divided by the requests, is the server's instructions per
# request: all of them, and (ferrocached only) those inside the request path (Session::serve,
# inclusive: parsing, the command, the reply). Differencing two runs rather than zeroing the
# counters mid-run (callgrind_control) also works for memcached, which drops to another user,
# where vgdb cannot reach it.
# Syscalls' kernel work is not counted; a vDSO clock read is.
#
# Usage: bench/callgrind.sh [binary ...]      (default: target/release/ferrocached)
#        bench/callgrind.sh target/release/ferrocached /usr/bin/memcached   (side by side)
# Environment:
#   WORKLOADS="W1 W2 W3"   REQUESTS=20000   BENCH=target/release/ferrocache-bench
#   PROTOCOL=text          or binary: the load generator's protocol
#   FERROCACHED_ARGS=""    extra flags for every ferrocached (e.g. --metrics-listen 127.0.0.1:0)
#   VARIANTS=""            '|'-separated flag sets each binary also runs with, to compare one
#                          build with a switch on and off in the same run, e.g.
#                          VARIANTS='|--no-latency-histograms' (the empty set: as given)
#   OUT=dir                where the callgrind files stay (default: a temporary directory)
set -euo pipefail
cd "$(dirname "$0")/.."
BINARIES=("$@")
[ ${#BINARIES[@]} -gt 0 ] || BINARIES=(target/release/ferrocached)
WORKLOADS=${WORKLOADS:-W1 W2 W3}
REQUESTS=${REQUESTS:-20000}
BENCH=${BENCH:-target/release/ferrocache-bench}
OUT=${OUT:-$(mktemp -d)}
FERROCACHED_ARGS=${FERROCACHED_ARGS:-}
PROTOCOL=${PROTOCOL:-text}
IFS='|' read -r -a VARIANT_LIST <<<"${VARIANTS:-}"
[ ${#VARIANT_LIST[@]} -gt 0 ] || VARIANT_LIST=("")
mkdir -p "$OUT"
# A reference memcached runs as nobody and writes its callgrind file here.
chmod a+rwx "$OUT"
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
[ -x "$BENCH" ] || { echo "callgrind.sh: $BENCH missing (cargo build --release -p ferrocache-bench)" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# instructions FILE FUNCTION: the inclusive Ir of FUNCTION in a callgrind dump (0 if absent).
instructions() {
  callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$1" 2>/dev/null |
    awk -v f="$2" '!found && index($0, f) { gsub(",", "", $1); print $1; found = 1 } END { if (!found) print 0 }'
}

# measure BINARY VARIANT NAME REQUESTS: "total serve" instructions of one run that starts the
# server, prefills, sends REQUESTS requests of the workload in $flags (none for 0) and stops it.
measure() {
  local binary=$1 variant=$2 name=$3 requests=$4 port pid dump
  port=$(free_port)
  name="$(basename "$binary")-v$variant_index-$name"
  local server=("$binary" -p "$port" -U 0 -l 127.0.0.1 -t 1 -m 256)
  local runas=()
  if [[ $(basename "$binary") == memcached* ]]; then
    # Under valgrind, memcached may only lower its descriptor limit to exactly what valgrind
    # leaves it (the limit less 12), and as root it must be started as another user.
    server+=(-c 1012)
    [ "$(id -u)" != 0 ] || runas=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
  else
    # shellcheck disable=SC2206
    server+=($FERROCACHED_ARGS $variant)
  fi
  (
    ulimit -n 1024
    exec "${runas[@]}" valgrind --tool=callgrind --callgrind-out-file="$OUT/$name.%p" \
      "${server[@]}" 2>"$OUT/$name.log"
  ) &
  pid=$!
  for _ in $(seq 1 600); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
  done
  "$BENCH" -s "127.0.0.1:$port" --no-progress --protocol "$PROTOCOL" --prefill --keys 10000 \
    --value-size 100 -c 4 -n 1 >/dev/null
  if [ "$requests" -gt 0 ]; then
    "$BENCH" -s "127.0.0.1:$port" --no-progress --protocol "$PROTOCOL" --keys 10000 \
      --value-size 100 -c 10 "${flags[@]}" -n "$requests" --seed 1 >/dev/null
  fi
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  dump="$OUT/$name.$pid"
  [ -s "$dump" ] || { echo "callgrind.sh: no dump for $name" >&2; exit 1; }
  printf '%s %s\n' "$(awk '/^(summary|totals):/ { print $2; exit }' "$dump")" \
    "$(instructions "$dump" "session/mod.rs:ferrocached::session::Session::serve")"
}

printf '| binary | flags | protocol | workload | requests | Ir per request (all) | Ir per request (Session::serve) |\n|---|---|---|---|---|---|---|\n'
for binary in "${BINARIES[@]}"; do
 for variant_index in "${!VARIANT_LIST[@]}"; do
  variant=${VARIANT_LIST[$variant_index]}
  for w in $WORKLOADS; do
    case $w in
      W1) flags=(--ratio 1:9 -P 1) ;;
      W2) flags=(--ratio 1:9 -P 16) ;;
      W3) flags=(--ratio 1:1 -P 16) ;;
      *) echo "callgrind.sh: unknown workload $w" >&2; exit 1 ;;
    esac
    base=$(measure "$binary" "$variant" "$w-base" 0)
    full=$(measure "$binary" "$variant" "$w" "$REQUESTS")
    read -r base_total base_serve <<<"$base"
    read -r full_total full_serve <<<"$full"
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$binary" "${variant:-(none)}" "$PROTOCOL" "$w" \
      "$REQUESTS" "$(( (full_total - base_total) / REQUESTS ))" \
      "$(( (full_serve - base_serve) / REQUESTS ))"
  done
 done
done
echo
echo "callgrind files: $OUT"
