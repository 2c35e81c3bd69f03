#!/usr/bin/env bash
# The long soak (issue: hardening): ferrocached at -m 64 under mixed load with evictions and
# expiries for DURATION seconds (default 600), plus the network fuzzer. Passes when the load
# saw no errors, RSS after warm-up stays flat, and no file descriptor leaked.
#
#   scripts/soak.sh                 # 10 minutes
#   DURATION=60 scripts/soak.sh     # a quick one
#
# Prints a summary and writes samples to target/soak/samples.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-600}"
WARMUP=$(( DURATION / 6 ))
out=target/soak
mkdir -p "$out"
cargo build --release --locked -p ferrocached -p ferrocache-bench >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
target/release/ferrocached -p "$port" -l 127.0.0.1 -t 2 -m 64 2>"$out/daemon.log" &
daemon=$!
trap 'kill $daemon 2>/dev/null || true; kill $(jobs -p) 2>/dev/null || true' EXIT
for _ in $(seq 200); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.05
done

rss() { awk '/VmRSS/ {print $2}' "/proc/$daemon/status"; }
fds() { ls "/proc/$daemon/fd" | wc -l; }
fds_start=$(fds)

# Mixed load: 2,000,000 keys of 100..4,000 bytes overflow 64 MiB, so evictions run throughout.
target/release/ferrocache-bench -s "127.0.0.1:$port" -c 40 -P 4 --keys 2000000 \
  --value-size 100-4000 --ratio 3:7 --key-pattern zipf --zipf-exponent 0.8 \
  -d "$DURATION" --no-progress --json >"$out/load.json" &
load=$!
# Expiries: items with 1-5 s TTLs, stored throughout at a modest rate.
python3 - "$port" "$DURATION" <<'PY' &
import random, socket, sys, time
port, duration = int(sys.argv[1]), float(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
end, n = time.time() + duration, 0
while time.time() < end:
    batch = b"".join(b"set ttl:%d 0 %d 200 noreply\r\n%s\r\n" % (n + i, random.randint(1, 5), b"t" * 200) for i in range(100))
    s.sendall(batch + b"mn\r\n")
    reply = b""
    while not reply.endswith(b"MN\r\n"):
        reply += s.recv(4096)
    n += 100
    time.sleep(0.01)
PY
expiries=$!

echo "second,rss_kib,fds" >"$out/samples.csv"
start=$(date +%s)
while kill -0 "$load" 2>/dev/null; do
  now=$(( $(date +%s) - start ))
  echo "$now,$(rss),$(fds)" >>"$out/samples.csv"
  sleep 10
done
wait "$load"
wait "$expiries" || true

stats=$(printf 'stats\r\nquit\r\n' | timeout 5 nc -q1 127.0.0.1 "$port" || true)
stat() { printf '%s\n' "$stats" | awk -v name="$1" '$2 == name {print $3}' | tr -d '\r'; }
fuzz_rounds=${FUZZ_ROUNDS:-50000}
FERROCACHE_FUZZ_ROUNDS=$fuzz_rounds cargo test --release --locked -p ferrocached --test hardening \
  network_fuzz -- --nocapture 2>&1 | grep -E "network fuzz|test result" || true

errors=$(python3 -c "import json; print(json.load(open('$out/load.json'))['errors'])")
ops=$(python3 -c "import json; print(round(json.load(open('$out/load.json'))['ops_per_sec']))")
rss_warm=$(awk -F, -v w="$WARMUP" 'NR > 1 && $1 >= w {print $2; exit}' "$out/samples.csv")
rss_peak=$(awk -F, -v w="$WARMUP" 'NR > 1 && $1 >= w && $2 > m {m = $2} END {print m}' "$out/samples.csv")
rss_end=$(rss)
sleep 1
fds_end=$(fds)
echo "soak: ${DURATION}s, ${ops} ops/s, errors ${errors}; evictions $(stat evictions), reclaimed $(stat reclaimed), expired_unfetched $(stat expired_unfetched), curr_items $(stat curr_items)"
echo "soak: RSS after warm-up ${rss_warm} KiB, peak ${rss_peak} KiB, end ${rss_end} KiB; fds start ${fds_start}, end ${fds_end}"
status=0
[ "$errors" = 0 ] || { echo "FAIL: the load saw $errors errors"; status=1; }
[ "$rss_peak" -le $(( rss_warm + rss_warm / 20 + 4096 )) ] || { echo "FAIL: RSS grew after warm-up"; status=1; }
[ "$fds_end" -le "$fds_start" ] || { echo "FAIL: descriptors leaked"; status=1; }
[ "$status" = 0 ] && echo "soak: PASS"
exit $status
