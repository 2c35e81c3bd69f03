#!/usr/bin/env bash
# W8: W2 (50 connections, 16 in flight, 10% set / 90% get, 100,000 keys of 100 bytes) over
# TLS, memcached 1.6.18 `-Z -t 2` and ferrocached `-Z -t 2` in turn (A B A B), with a test CA
# made here by openssl. Prints ops/s and server CPU per request (user+sys from /proc/PID/stat
# fields 14+15 over the measured run, divided by the requests the client completed in it).
#
# Usage: bench/compare_tls.sh [rounds] [seconds]     (defaults: 2 rounds of 5 s)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-2}"
SECONDS_PER_RUN="${2:-5}"
cargo build --release --locked -q -p ferrocached -p ferrocache-bench
BENCH=target/release/ferrocache-bench
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"; [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null || true' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$DIR/ca.key" \
  -out "$DIR/ca.pem" -days 2 -subj "/CN=bench CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$DIR/server.key" \
  -out "$DIR/server.csr" -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$DIR/ext"
openssl x509 -req -in "$DIR/server.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" -CAcreateserial \
  -out "$DIR/server.pem" -days 2 -extfile "$DIR/ext" 2>/dev/null
chmod 755 "$DIR" && chmod 644 "$DIR"/*
TLS_OPTS="ssl_chain_cert=$DIR/server.pem,ssl_key=$DIR/server.key"
TICK=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run() { # server port
  local server=$1 port=$2
  if [ "$server" = memcached ]; then
    memcached -u nobody -p "$port" -U 0 -l 127.0.0.1 -t 2 -m 1024 -Z -o "$TLS_OPTS" &
  else
    target/release/ferrocached -p "$port" -l 127.0.0.1 -t 2 -m 1024 -Z -o "$TLS_OPTS" 2>/dev/null &
  fi
  PID=$!
  for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
  "$BENCH" -s "127.0.0.1:$port" --tls "$DIR/ca.pem" --no-progress --prefill --keys 100000 \
    --value-size 100 -c 8 -d 0.2 >/dev/null
  # Warm-up first (handshakes, caches), then the measured run alone is timed.
  "$BENCH" -s "127.0.0.1:$port" --tls "$DIR/ca.pem" --no-progress -c 50 -P 16 --ratio 1:9 \
    --keys 100000 --value-size 100 -d 1 --warmup 0 >/dev/null
  local before after json
  before=$(cpu_ticks "$PID")
  json=$("$BENCH" -s "127.0.0.1:$port" --tls "$DIR/ca.pem" --no-progress -c 50 -P 16 \
    --ratio 1:9 --keys 100000 --value-size 100 -d "$SECONDS_PER_RUN" --warmup 0 --json)
  after=$(cpu_ticks "$PID")
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
  python3 -c 'import json,sys
d=json.loads(sys.argv[1]); ticks=int(sys.argv[3])-int(sys.argv[2]); hz=int(sys.argv[4])
us=ticks/hz*1e6/max(d["requests"]+d["warmup_requests"],1)
ops=d["ops_per_sec"]; p99=d["latency"]["p99_ms"]; errors=d["errors"]
print(f"{sys.argv[5]:12} {ops:>10.0f} ops/s  {us:6.2f} us CPU/request  p99 {p99:.2f} ms  errors {errors}")' \
    "$json" "$before" "$after" "$TICK" "$server"
}

for round in $(seq 1 "$ROUNDS"); do
  echo "round $round/$ROUNDS"
  run memcached 22122
  run ferrocached 22123
done
