#!/usr/bin/env bash
# Side-by-side comparison of ferrocached with memcached 1.6.18 on the standard workloads of
# shared/BENCHMARKS.md (W1-W7, W9). Both servers get the same threads (-t 2; W9 also 8 and 16)
# and memory (-m); each
# workload runs alternating A B A B (A = memcached, B = ferrocached); the table gives medians
# and ratios (ferrocached / memcached). W1-W3 also give each server's CPU per request: user+sys
# from /proc/PID/stat over the bench run (warm-up included), divided by the requests it sent;
# W7 too, over both of its groups' requests. Absolute numbers on a shared machine drift; ratios
# from the same run hold.
#
# W7 runs two bench processes at once against one server: 40 connections getting 100-byte values
# (100,000 keys) and 4 getting 256 KiB values (200 keys), 1 in flight each; it reports the small
# gets' p50/p99 and the big values' MB/s (10^6 bytes of values per second).
#
# W9 writes 200,000 keys once at -m 64 with values of 1..5000 bytes (uniform, seeded by the
# round, the same for both servers), then counts curr_items and the newest 10,000 keys still
# there, at -t 2, 8 and 16.
#
# Usage: bench/compare.sh [workload ...]          (default: W1 W2 W3 W4 W5 W6 W7 W9)
# Environment:
#   ROUNDS=2           A B pairs per workload
#   RUN_SECONDS=5      measured seconds of W1-W3 and W7 (after WARMUP_SECONDS=1; W7's standard is 8)
#   W5_MGETS=20000     multi-gets of 100 keys in W5's warm-up and again measured (2M + 2M keys)
#   IDLE_CONNS=5000    W6 connections
#   MEMCACHED=memcached  FERROCACHED=target/release/ferrocached  BENCH=target/release/ferrocache-bench
#   PROTOCOL=text      text or binary: the protocol of W1-W3's requests (memcached serves both)
#   SKIP_BUILD=1       use the binaries as they are
#   JSON_DIR=dir       keep every run's JSON there (default: a temporary directory)
#   PLOT_DIR=dir       draw W1-W3 and W7 (small gets) there, one SVG per workload with both
#                      servers' last round: p50/p99/p99.9 against time and the latency histogram
#                      (default: JSON_DIR/plots)
#   INTERVAL=0.25      seconds per point of the percentiles against time
#   RATE=N             W1-W3 at a fixed total rate of N requests/s (latency from each request's
#                      scheduled time) instead of as fast as the servers answer
#   SERVER_CPUS=1 CLIENT_CPUS=0   pin the servers and the load generator to those CPUs
#                      (taskset): on 2 shared cores the tail latency of a saturated run is
#                      mostly the scheduler sharing them (README, Performance)
#
# Servers listen on ephemeral 127.0.0.1 ports, readiness is polled, each is stopped by its PID.
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-2}
RUN_SECONDS=${RUN_SECONDS:-5}
WARMUP_SECONDS=${WARMUP_SECONDS:-1}
W5_MGETS=${W5_MGETS:-20000}
IDLE_CONNS=${IDLE_CONNS:-5000}
W7_BIG=262144
PROTOCOL=${PROTOCOL:-text}
MEMCACHED=${MEMCACHED:-memcached}
FERROCACHED=${FERROCACHED:-target/release/ferrocached}
BENCH=${BENCH:-target/release/ferrocache-bench}
WORKLOADS=("$@")
[ ${#WORKLOADS[@]} -gt 0 ] || WORKLOADS=(W1 W2 W3 W4 W5 W6 W7 W9)

# Optional CPU pinning: a prefix for the servers' and the load generator's commands.
SERVER_PIN=()
CLIENT_PIN=()
[ -z "${SERVER_CPUS:-}" ] || SERVER_PIN=(taskset -c "$SERVER_CPUS")
[ -z "${CLIENT_CPUS:-}" ] || CLIENT_PIN=(taskset -c "$CLIENT_CPUS")
RATE_FLAGS=()
[ -z "${RATE:-}" ] || RATE_FLAGS=(--rate "$RATE")

if [ -z "${SKIP_BUILD:-}" ]; then
  cargo build --release -q -p ferrocached -p ferrocache-bench
fi
command -v "$MEMCACHED" >/dev/null || { echo "compare.sh: $MEMCACHED not found (scripts/install-test-deps.sh)" >&2; exit 1; }
[ -x "$FERROCACHED" ] || { echo "compare.sh: $FERROCACHED missing" >&2; exit 1; }
[ -x "$BENCH" ] || { echo "compare.sh: $BENCH missing" >&2; exit 1; }

# W6 holds thousands of sockets in the bench and in the server.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started_at=$(date -u '+%Y-%m-%d %H:%M UTC')
JSON_DIR=${JSON_DIR:-$(mktemp -d)}
mkdir -p "$JSON_DIR"
RESULTS="$JSON_DIR/results.tsv"
PLOT_DIR=${PLOT_DIR:-$JSON_DIR/plots}
INTERVAL=${INTERVAL:-0.25}
: >"$RESULTS"

SERVER_PID=""
SERVER_PORT=""
cleanup() { [ -z "$SERVER_PID" ] || { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }; }
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server memcached|ferrocached MEGABYTES [extra flags...]: sets SERVER_PID, SERVER_PORT.
# THREADS (default 2) is both servers' -t.
start_server() {
  local kind=$1 megabytes=$2
  shift 2
  SERVER_PORT=$(free_port)
  case $kind in
    memcached) ${SERVER_PIN[@]+"${SERVER_PIN[@]}"} "$MEMCACHED" -u nobody -p "$SERVER_PORT" -U 0 -l 127.0.0.1 -t "${THREADS:-2}" -m "$megabytes" "$@" &
      ;;
    ferrocached) ${SERVER_PIN[@]+"${SERVER_PIN[@]}"} "$FERROCACHED" -u nobody -p "$SERVER_PORT" -U 0 -l 127.0.0.1 -t "${THREADS:-2}" -m "$megabytes" "$@" 2>>"$JSON_DIR/ferrocached.log" &
      ;;
  esac
  SERVER_PID=$!
  # Ready when it accepts a connection.
  for _ in $(seq 1 500); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$SERVER_PORT") 2>/dev/null; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "compare.sh: $kind exited at start" >&2; exit 1; }
    sleep 0.02
  done
  echo "compare.sh: $kind did not listen on $SERVER_PORT" >&2
  exit 1
}

stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

# bench NAME ARGS...: runs the bench with --json against the current server, keeps the JSON.
# A failed run (a server bug, say) is reported and leaves no JSON; the comparison goes on.
bench() {
  local name=$1
  shift
  if ! ${CLIENT_PIN[@]+"${CLIENT_PIN[@]}"} "$BENCH" -s "127.0.0.1:$SERVER_PORT" --no-progress --json "$@" >"$JSON_DIR/$name.json"; then
    echo "  $name FAILED" >&2
    echo "$name" >>"$JSON_DIR/failed.txt"
    : >"$JSON_DIR/$name.json"
  fi
}

# record WORKLOAD SERVER METRIC JSONFILE FIELD: appends one measurement.
record() {
  [ -s "$4" ] || return 0
  local value
  value=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
for part in sys.argv[2].split("."): d = d[part]
print(d)' "$4" "$5")
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$value" >>"$RESULTS"
  echo "  $1 $2 $3 = $value" >&2
}

# server_cpu_ticks: user+sys clock ticks the current server has used.
server_cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
CLOCK_TICKS=$(getconf CLK_TCK)

# record_cpu WORKLOAD SERVER TICKS JSONFILE...: appends the server's CPU microseconds per
# request, over the requests (warm-up included) of every JSON file (W7: both groups').
record_cpu() {
  local w=$1 server=$2 ticks=$3 file
  shift 3
  for file in "$@"; do [ -s "$file" ] || return 0; done
  local value
  value=$(python3 -c 'import json,sys
requests = sum(d["requests"] + d["warmup_requests"] for d in (json.load(open(f)) for f in sys.argv[3:]))
print(float(sys.argv[1]) / float(sys.argv[2]) * 1e6 / requests)' \
    "$ticks" "$CLOCK_TICKS" "$@")
  printf '%s\t%s\t%s\t%s\n' "$w" "$server" cpu_us "$value" >>"$RESULTS"
  echo "  $w $server cpu_us = $value" >&2
}

# record_value WORKLOAD SERVER METRIC VALUE: appends a figure computed here.
record_value() {
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RESULTS"
  echo "  $1 $2 $3 = $4" >&2
}

want() { local w; for w in "${WORKLOADS[@]}"; do [ "$w" = "$1" ] && return 0; done; return 1; }

load_workloads=()
for w in W1 W2 W3; do want $w && load_workloads+=("$w"); done

for round in $(seq 1 "$ROUNDS"); do
  echo "round $round/$ROUNDS" >&2
  if [ ${#load_workloads[@]} -gt 0 ]; then
    for server in memcached ferrocached; do
      start_server "$server" 1024
      # 100,000 keys of 100 bytes, then W1-W3 on the same instance.
      "$BENCH" -s "127.0.0.1:$SERVER_PORT" --no-progress --prefill --keys 100000 --value-size 100 \
        -c 8 -d 0.2 >/dev/null
      for w in "${load_workloads[@]}"; do
        case $w in
          W1) flags=(--ratio 1:9 -P 1) ;;
          W2) flags=(--ratio 1:9 -P 16) ;;
          W3) flags=(--ratio 1:1 -P 16) ;;
        esac
        name="$w-$server-$round"
        ticks_before=$(server_cpu_ticks)
        bench "$name" -c 50 "${flags[@]}" --keys 100000 --value-size 100 \
          -d "$RUN_SECONDS" --warmup "$WARMUP_SECONDS" --protocol "$PROTOCOL" --interval "$INTERVAL" \
          ${RATE_FLAGS[@]+"${RATE_FLAGS[@]}"}
        ticks=$(($(server_cpu_ticks) - ticks_before))
        record "$w" "$server" ops "$JSON_DIR/$name.json" ops_per_sec
        record "$w" "$server" p99_ms "$JSON_DIR/$name.json" latency.p99_ms
        record_cpu "$w" "$server" "$ticks" "$JSON_DIR/$name.json"
      done
      stop_server
    done
  fi
  if want W4; then
    for server in memcached ferrocached; do
      start_server "$server" 64
      name="W4-$server-$round"
      bench "$name" --mode fill --key-format 'key:0000000000000000000000:{n}' --value-size 100 \
        --fill-batch 500
      record W4 "$server" items "$JSON_DIR/$name.json" curr_items
      stop_server
    done
  fi
  if want W5; then
    for server in memcached ferrocached; do
      start_server "$server" 64
      name="W5-$server-$round"
      bench "$name" --mode cache-aside --keys 1000000 --key-pattern zipf --zipf-exponent 0.9 \
        --value-size 1000 --multiget 100 -c 4 -P 1 \
        --warmup-requests "$W5_MGETS" --requests "$W5_MGETS" --seed "$round"
      record W5 "$server" hit_ratio "$JSON_DIR/$name.json" hit_ratio
      stop_server
    done
  fi
  if want W6; then
    for server in memcached ferrocached; do
      start_server "$server" 1024 -c $((IDLE_CONNS + 1000))
      name="W6-$server-$round"
      bench "$name" --mode idle --idle-connections "$IDLE_CONNS" --server-pid "$SERVER_PID" -d 1
      record W6 "$server" kib_per_conn "$JSON_DIR/$name.json" kib_per_connection
      stop_server
    done
  fi
  if want W7; then
    for server in memcached ferrocached; do
      start_server "$server" 1024
      "$BENCH" -s "127.0.0.1:$SERVER_PORT" --no-progress --prefill --keys 100000 --value-size 100 \
        -c 8 -d 0.2 >/dev/null
      "$BENCH" -s "127.0.0.1:$SERVER_PORT" --no-progress --prefill --key-format 'big:{n}' \
        --keys 200 --value-size "$W7_BIG" -c 4 -d 0.2 >/dev/null
      small="W7-small-$server-$round"
      big="W7-big-$server-$round"
      ticks_before=$(server_cpu_ticks)
      # Both groups at once, each its own process (its own client core time), same phases.
      bench "$small" -c 40 --ratio 0:1 -P 1 --keys 100000 --value-size 100 \
        -d "$RUN_SECONDS" --warmup "$WARMUP_SECONDS" --interval "$INTERVAL" &
      small_pid=$!
      bench "$big" -c 4 --ratio 0:1 -P 1 --key-format 'big:{n}' --keys 200 \
        --value-size "$W7_BIG" -d "$RUN_SECONDS" --warmup "$WARMUP_SECONDS" &
      big_pid=$!
      wait "$small_pid" "$big_pid"
      ticks=$(($(server_cpu_ticks) - ticks_before))
      record W7 "$server" small_p50_ms "$JSON_DIR/$small.json" latency.p50_ms
      record W7 "$server" small_p99_ms "$JSON_DIR/$small.json" latency.p99_ms
      if [ -s "$JSON_DIR/$big.json" ]; then
        record_value W7 "$server" big_mb_s "$(python3 -c 'import json,sys
print(json.load(open(sys.argv[1]))["ops_per_sec"] * int(sys.argv[2]) / 1e6)' "$JSON_DIR/$big.json" "$W7_BIG")"
      fi
      record_cpu W7 "$server" "$ticks" "$JSON_DIR/$small.json" "$JSON_DIR/$big.json"
      stop_server
    done
  fi
  if want W9; then
    for threads in 2 8 16; do
      for server in memcached ferrocached; do
        THREADS=$threads start_server "$server" 64
        name="W9-t$threads-$server-$round"
        bench "$name" --mode fill --key-format 'k:{n}' --value-size 1-5000 --fill-keys 200000 \
          --newest 10000 --fill-batch 500 --seed "$round"
        record "W9-t$threads" "$server" items "$JSON_DIR/$name.json" curr_items
        record "W9-t$threads" "$server" newest_kept "$JSON_DIR/$name.json" newest_kept
        stop_server
      done
    done
  fi
done

# Where and when, then medians and ratios as a markdown table.
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
echo "$started_at to $(date -u '+%H:%M UTC'); $(nproc) CPUs ($cpu); load average $load_before at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo "$("$MEMCACHED" -V); $("$FERROCACHED" -V 2>&1 | head -1)"
echo
setup=""
[ -z "${RATE:-}" ] || setup="$setup, W1-W3 at $RATE requests/s"
[ -z "${SERVER_CPUS:-}" ] || setup="$setup, servers on CPU $SERVER_CPUS"
[ -z "${CLIENT_CPUS:-}" ] || setup="$setup, load generator on CPU $CLIENT_CPUS"
python3 - "$RESULTS" "$ROUNDS" "$RUN_SECONDS" "$PROTOCOL" "$setup" <<'EOF'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    w, server, metric, value = line.rstrip("\n").split("\t")
    rows[(w, metric, server)].append(float(value))
labels = {
    ("W1", "ops"): ("W1 get-hit", "ops/s", True),
    ("W1", "p99_ms"): ("W1 get-hit", "p99 ms", False),
    ("W1", "cpu_us"): ("W1 get-hit", "server CPU us/request", False),
    ("W2", "ops"): ("W2 get-hit-pipelined", "ops/s", True),
    ("W2", "p99_ms"): ("W2 get-hit-pipelined", "p99 ms", False),
    ("W2", "cpu_us"): ("W2 get-hit-pipelined", "server CPU us/request", False),
    ("W3", "ops"): ("W3 set-heavy-pipelined", "ops/s", True),
    ("W3", "p99_ms"): ("W3 set-heavy-pipelined", "p99 ms", False),
    ("W3", "cpu_us"): ("W3 set-heavy-pipelined", "server CPU us/request", False),
    ("W4", "items"): ("W4 memory-fill", "curr_items at first eviction", True),
    ("W5", "hit_ratio"): ("W5 lazy-loading", "hit ratio", True),
    ("W6", "kib_per_conn"): ("W6 idle connections", "KiB RSS per connection", False),
    ("W7", "small_p50_ms"): ("W7 small gets beside big values", "small-get p50 ms", False),
    ("W7", "small_p99_ms"): ("W7 small gets beside big values", "small-get p99 ms", False),
    ("W7", "big_mb_s"): ("W7 small gets beside big values", "big values MB/s", True),
    ("W7", "cpu_us"): ("W7 small gets beside big values", "server CPU us/request", False),
}
for t in (2, 8, 16):
    labels[(f"W9-t{t}", "items")] = (f"W9 mixed-size capacity, -t {t}", "curr_items", True)
    labels[(f"W9-t{t}", "newest_kept")] = (f"W9 mixed-size capacity, -t {t}", "newest 10,000 kept", True)
pinning = sys.argv[5]
print(f"{sys.argv[2]} rounds, A B alternating, {sys.argv[3]} s per W1-W3 and W7 run ({sys.argv[4]} protocol{pinning}); medians; ratio = ferrocached / memcached\n")
print("| workload | metric | memcached 1.6.18 | ferrocached | ratio | better |")
print("|---|---|---|---|---|---|")
def fmt(v):
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3f}"
for (w, metric), (name, unit, higher) in labels.items():
    a, b = rows.get((w, metric, "memcached")), rows.get((w, metric, "ferrocached"))
    if not a or not b:
        continue
    ma, mb = statistics.median(a), statistics.median(b)
    ratio = f"{mb / ma:.2f}x" if ma else "-"
    print(f"| {name} | {unit} | {fmt(ma)} | {fmt(mb)} | {ratio} | {'higher' if higher else 'lower'} |")
EOF

# One figure per workload: both servers' last round.
plotted=()
for w in W1 W2 W3 W7; do
  want $w || continue
  case $w in
    W1) title="W1 get-hit" ;;
    W2) title="W2 get-hit-pipelined" ;;
    W3) title="W3 set-heavy-pipelined" ;;
    W7) title="W7 small gets beside big values (the small gets)" ;;
  esac
  prefix=$w
  [ $w = W7 ] && prefix=W7-small
  runs=()
  for server in memcached ferrocached; do
    json="$JSON_DIR/$prefix-$server-$ROUNDS.json"
    [ -s "$json" ] && runs+=("$server=$json")
  done
  [ ${#runs[@]} -eq 2 ] || continue
  mkdir -p "$PLOT_DIR"
  if "$BENCH" plot --title "$title, round $ROUNDS, $RUN_SECONDS s" -o "$PLOT_DIR/$w.svg" "${runs[@]}"; then
    plotted+=("$PLOT_DIR/$w.svg")
  fi
done
[ ${#plotted[@]} -eq 0 ] || { echo; echo "Plots: ${plotted[*]}"; }
if [ -s "$JSON_DIR/failed.txt" ]; then
  echo; echo "Failed runs (left out of the medians): $(tr '\n' ' ' <"$JSON_DIR/failed.txt")"
fi
echo "(raw runs: $JSON_DIR)" >&2
