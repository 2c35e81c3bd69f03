#!/usr/bin/env python3
"""Restart time, side by side: ferrocached and memcached 1.6.18, each with `-e` on tmpfs.

For each server: start it on a fresh memory file, fill it, stop it gracefully (ferrocached:
SIGTERM; memcached: SIGUSR1, its graceful stop, the only one after which it restarts warm),
start it again on the same file (in the next wall-clock second: memcached starts cold within
the second it stopped in) and time (a) the graceful stop, (b) from the new process's
start to the first served hit, and report the items it holds again (`curr_items`).

Fills: `mixed N` (daemon/tests/restart.rs's mix: values of 10 B to 300 KB, flags, one in seven
already expired, TTLs) or `full` (100-byte values under sequential keys until the server
evicts: a full -m).

Usage: bench/restart.py FERROCACHED_BINARY mixed 1000000 [-m 1024]
       bench/restart.py FERROCACHED_BINARY full [-m 1024]
"""

import os
import signal
import socket
import subprocess
import sys
import time

MEMCACHED = "/usr/bin/memcached"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def stats(self):
        self.send(b"stats\r\n")
        stats = {}
        while True:
            line = self.line()
            if line == b"END":
                return stats
            _, name, value = line.decode().split(" ", 2)
            stats[name] = value


def value(i):
    if i % 20000 == 7:
        n = 300000 + i % 1000
    elif i % 100 == 0:
        n = 2000 + i % 3000
    elif i % 10 == 0:
        n = 200 + i % 1000
    else:
        n = 10 + i % 100
    return bytes((97 + (i + at * 7) % 26) for at in range(min(n, 64))) * (n // 64) + b"x" * (n % 64)


def fill_mixed(conn, n):
    now = int(time.time())
    batch = []
    for i in range(n):
        exptime = {0: -1, 1: 3600, 2: now + 7200}.get(i % 7, 0)
        v = value(i)
        batch.append(b"set restart:%d %d %d %d noreply\r\n%s\r\n" % (i, (i * 2654435761) & 0xFFFFFFFF, exptime, len(v), v))
        if len(batch) == 10000:
            conn.send(b"".join(batch))
            batch = []
    conn.send(b"".join(batch) + b"version\r\n")
    conn.line()


def fill_full(conn):
    v = b"v" * 100
    i = 0
    while True:
        batch = [b"set key:0000000000000000000000:%d 0 0 100 noreply\r\n%s\r\n" % (j, v) for j in range(i, i + 200000)]
        i += 200000
        conn.send(b"".join(batch))
        if int(conn.stats()["evictions"]) > 0:
            return i


def live_items(conn, keys):
    """Items served: multi-gets of every key stored, hits counted (curr_items may still count
    expired items that were not reclaimed yet)."""
    hits = 0
    for at in range(0, len(keys), 100):
        conn.send(b"get " + b" ".join(keys[at:at + 100]) + b"\r\n")
        while True:
            line = conn.line()
            if line == b"END":
                break
            if line.startswith(b"VALUE "):
                hits += 1
    return hits


def start(kind, binary, port, memory, path):
    if kind == "ferrocached":
        args = [binary, "-p", str(port), "-U", "0", "-t", "2", "-m", memory, "-e", path]
    else:
        args = [MEMCACHED, "-u", "nobody", "-p", str(port), "-U", "0", "-t", "2", "-m", memory, "-e", path]
    started = time.monotonic()
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, started


def first_hit(port, key, started, proc):
    while True:
        if proc.poll() is not None:
            raise RuntimeError("server exited")
        try:
            conn = Conn(port)
            conn.send(b"get %s\r\n" % key)
            line = conn.line()
            if line.startswith(b"VALUE"):
                took = time.monotonic() - started
                while conn.line() != b"END":
                    pass
                return took, conn
            conn.sock.close()
        except (ConnectionRefusedError, EOFError, ConnectionResetError):
            pass
        time.sleep(0.001)


def run(kind, binary, mode, count, memory):
    path = "/dev/shm/restart-bench-%s-%d" % (kind, os.getpid())
    for p in (path, path + ".meta"):
        if os.path.exists(p):
            os.remove(p)
    port = free_port()
    proc, started = start(kind, binary, port, memory, path)
    key = b"restart:1" if mode == "mixed" else b"key:0000000000000000000000:0"
    while True:
        try:
            conn = Conn(port)
            break
        except ConnectionRefusedError:
            time.sleep(0.01)
    t = time.monotonic()
    if mode == "mixed":
        fill_mixed(conn, count)
    else:
        count = fill_full(conn)
        # The first keys were evicted: probe for a hit on one of the newest.
        key = b"key:0000000000000000000000:%d" % (count - 1)
    filled = time.monotonic() - t
    if mode == "mixed":
        keys = [b"restart:%d" % i for i in range(count)]
    else:
        keys = [b"key:0000000000000000000000:%d" % i for i in range(count)]
    before = live_items(conn, keys)
    conn.sock.close()
    t = time.monotonic()
    proc.send_signal(signal.SIGTERM if kind == "ferrocached" else signal.SIGUSR1)
    proc.wait()
    stopped = time.monotonic() - t
    # memcached refuses to restart warm within the wall-clock second it stopped in
    # (memcached.c: time_delta <= 0 means "the clock has done something crazy"): both servers
    # start again in the next second.
    time.sleep(1.05 - time.time() % 1)
    proc, started = start(kind, binary, port, memory, path)
    hit, conn = first_hit(port, key, started, proc)
    after = live_items(conn, keys)
    conn.sock.close()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for p in (path, path + ".meta"):
        if os.path.exists(p):
            os.remove(p)
    print("%-12s %-6s sets=%d filled_in=%.1fs live_before=%d graceful_stop=%.3fs start_to_first_hit=%.3fs live_after=%d"
          % (kind, mode, count, filled, before, stopped, hit, after), flush=True)


def main():
    binary, mode = sys.argv[1], sys.argv[2]
    rest = sys.argv[3:]
    count = int(rest.pop(0)) if mode == "mixed" else 0
    memory = rest[rest.index("-m") + 1] if "-m" in rest else "1024"
    for kind in ("ferrocached", "memcached"):
        run(kind, binary, mode, count, memory)


if __name__ == "__main__":
    main()
