#!/usr/bin/env bash
# Instructions per request, counted by callgrind: deterministic where ops/s on a shared 2-core
# machine are not, so a small cost (a counter, a clock read) shows up. Runs each given
# ferrocached binary under valgrind --tool=callgrind with -t 1, prefills 10,000 keys of 100
# bytes, zeroes the counts, runs a fixed number of requests of W1, W2 or W3's mix
# (shared/BENCHMARKS.md) from ferrocache-bench, dumps, and prints the server's instructions per
# request: all of them, and those inside the request path (Session::serve, inclusive: parsing,
# the command, the reply).
# Syscalls' kernel work is not counted; a vDSO clock read is.
#
# Usage: bench/callgrind.sh [binary ...]      (default: target/release/ferrocached)
# Environment:
#   WORKLOADS="W1 W2 W3"   REQUESTS=20000   BENCH=target/release/ferrocache-bench
#   FERROCACHED_ARGS=""    extra flags for every server (e.g. --metrics-listen 127.0.0.1:0)
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
IFS='|' read -r -a VARIANT_LIST <<<"${VARIANTS:-}"
[ ${#VARIANT_LIST[@]} -gt 0 ] || VARIANT_LIST=("")
mkdir -p "$OUT"
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

printf '| binary | flags | workload | requests | Ir per request (all) | Ir per request (Session::serve) |\n|---|---|---|---|---|---|\n'
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
    port=$(free_port)
    name="$(basename "$binary")-v$variant_index-$w"
    # shellcheck disable=SC2086
    valgrind --tool=callgrind --callgrind-out-file="$OUT/$name.%p" \
      "$binary" -p "$port" -U 0 -l 127.0.0.1 -t 1 -m 256 $FERROCACHED_ARGS $variant 2>"$OUT/$name.log" &
    pid=$!
    for _ in $(seq 1 600); do
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
      sleep 0.05
    done
    "$BENCH" -s "127.0.0.1:$port" --no-progress --prefill --keys 10000 --value-size 100 -c 4 -n 1 >/dev/null
    callgrind_control --zero "$pid" >/dev/null 2>&1
    "$BENCH" -s "127.0.0.1:$port" --no-progress --keys 10000 --value-size 100 -c 10 "${flags[@]}" \
      -n "$REQUESTS" --seed 1 >/dev/null
    callgrind_control --dump="$w" "$pid" >/dev/null 2>&1
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    dump="$OUT/$name.$pid.1"
    [ -s "$dump" ] || { echo "callgrind.sh: no dump for $name" >&2; exit 1; }
    total=$(awk '/^summary:/ { print $2 }' "$dump")
    serve=$(instructions "$dump" "session/mod.rs:ferrocached::session::Session::serve")
    printf '| %s | %s | %s | %s | %s | %s |\n' "$binary" "${variant:-(none)}" "$w" "$REQUESTS" \
      "$(( total / REQUESTS ))" "$(( serve / REQUESTS ))"
  done
 done
done
echo
echo "callgrind files: $OUT"
