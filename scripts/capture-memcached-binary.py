#!/usr/bin/env python3
"""Captures memcached 1.6.18's exact answers to binary-protocol requests (TCP) and to text and
binary requests over UDP, and writes them as Rust data for the protocol tests and the executor's
replays: protocol/tests/common/captured_binary_1_6_18.rs.

Run by hand when an exchange is added (memcached 1.6.18 must be installed), then review the
diff: `scripts/capture-memcached-binary.py` rewrites the data file. (Stat values, and CAS values
if the sequence of exchanges changes, differ from run to run.)

It starts its own memcached (`-U` on, default `-B auto`, `-I 1m`) on an ephemeral loopback port.
Before every exchange it sends `flush_all` and the exchange's setup (text commands, replies
dropped) on a separate connection; the exchange then runs on a fresh connection (TCP) or a fresh
socket (UDP). Every request frame carries its own opaque, so responses can be matched to their
requests; CAS values differ between servers and runs, and the data says where they are (the
header of every binary response; no UDP exchange shows one).
"""

import json
import os
import socket
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
OUTPUT = os.path.join(HERE, "..", "protocol", "tests", "common", "captured_binary_1_6_18.rs")
IDLE = 0.25  # seconds without a byte that end a response

GET, SET, ADD, REPLACE, DELETE, INCR, DECR, QUIT, FLUSH, GETQ, NOOP, VERSION = range(12)
GETK, GETKQ, APPEND, PREPEND, STAT = 0x0C, 0x0D, 0x0E, 0x0F, 0x10
SETQ, ADDQ, REPLACEQ, DELETEQ, INCRQ, DECRQ, QUITQ, FLUSHQ, APPENDQ, PREPENDQ = range(0x11, 0x1B)
VERBOSITY, TOUCH, GAT, GATQ = 0x1B, 0x1C, 0x1D, 0x1E
SASL_LIST, SASL_AUTH, SASL_STEP, GATK, GATKQ = 0x20, 0x21, 0x22, 0x23, 0x24
NO_CREATE = 0xFFFFFFFF
TOO_LARGE = 1 << 20  # over memcached's default 1 MiB item limit

_opaque = [0x1000]


def frame(op, key=b"", extras=b"", value=b"", cas=0, magic=0x80, bodylen=None, keylen=None,
          extlen=None, opaque=None):
    """One request frame; the length fields may be overridden to build malformed ones."""
    if opaque is None:
        _opaque[0] += 1
        opaque = _opaque[0]
    kl = len(key) if keylen is None else keylen
    el = len(extras) if extlen is None else extlen
    bl = len(extras) + len(key) + len(value) if bodylen is None else bodylen
    return struct.pack(">BBHBBHIIQ", magic, op, kl, el, 0, 0, bl, opaque, cas) + extras + key + value


def store(op, key, value, flags=0, exptime=0, cas=0, **kw):
    return frame(op, key, struct.pack(">II", flags, exptime), value, cas=cas, **kw)


def arith(op, key, delta, initial=0, exptime=NO_CREATE, cas=0):
    return frame(op, key, struct.pack(">QQI", delta, initial, exptime), cas=cas)


def touch(op, key, exptime=0, **kw):
    return frame(op, key, struct.pack(">I", exptime), **kw)


def noop():
    return frame(NOOP)


def step(request, filler=0, tail=b"", cas_from_previous=False):
    return {"request": request, "filler": filler, "tail": tail, "cas_from_previous": cas_from_previous}


def too_large_set(op, key):
    """A set whose value is over the limit: header, extras and key here, the value as filler."""
    return frame(op, key, struct.pack(">II", 0, 0), bodylen=8 + len(key) + TOO_LARGE)


SET_K = b"set k 5 0 3\r\nabc\r\n"
SET_N = b"set n 0 0 2\r\n10\r\n"


def exchanges():
    """(name, setup, steps, compare) for every TCP exchange."""
    e = []

    def add(name, setup, *steps, compare="Exact"):
        steps = [s if isinstance(s, dict) else step(s) for s in steps]
        e.append((name, setup, steps, compare))

    # Retrieval.
    add("get miss", b"", frame(GET, b"k"))
    add("get hit", SET_K, frame(GET, b"k"))
    add("getk hit", SET_K, frame(GETK, b"k"))
    add("getk miss", b"", frame(GETK, b"k"))
    add("getq miss, noop", b"", frame(GETQ, b"k") + noop())
    add("getq hit, noop", SET_K, frame(GETQ, b"k") + noop())
    add("getkq hit and miss, noop", SET_K, frame(GETKQ, b"k") + frame(GETKQ, b"zz") + noop())
    add("quiet multi-get pipeline", b"set a 1 0 1\r\na\r\nset c 3 0 3\r\nccc\r\n",
        frame(GETQ, b"a") + frame(GETQ, b"b") + frame(GETKQ, b"c") + frame(GETKQ, b"d") + noop())
    add("get of a 250-byte key", b"", frame(GET, b"k" * 250))
    add("binary key set and get", b"",
        store(SET, b"\x00\xff \r\n", b"v") + frame(GETK, b"\x00\xff \r\n"))
    # Stores.
    add("set", b"", store(SET, b"k", b"hello", flags=7))
    add("set then get", b"", store(SET, b"k", b"hello", flags=7, exptime=100), frame(GET, b"k"))
    add("set empty value, get", b"", store(SET, b"k", b"") + frame(GET, b"k"))
    add("setq, noop", b"", store(SETQ, b"k", b"v") + noop())
    add("setq, getq, noop", b"", store(SETQ, b"k", b"v") + frame(GETQ, b"k") + noop())
    add("add new", b"", store(ADD, b"k", b"v"))
    add("add existing", SET_K, store(ADD, b"k", b"v"))
    add("addq existing, noop", SET_K, store(ADDQ, b"k", b"v") + noop())
    add("replace missing", b"", store(REPLACE, b"k", b"v"))
    add("replace existing", SET_K, store(REPLACE, b"k", b"v"))
    add("replaceq missing, noop", b"", store(REPLACEQ, b"k", b"v") + noop())
    add("set with a CAS that differs", SET_K, store(SET, b"k", b"v", cas=0xFFFFFFFF00))
    add("set with a CAS on a missing key", b"", store(SET, b"k", b"v", cas=0xFFFFFFFF00))
    add("set with the item's CAS", SET_K, frame(GET, b"k"),
        step(store(SET, b"k", b"new"), cas_from_previous=True))
    add("add with the item's CAS", SET_K, frame(GET, b"k"),
        step(store(ADD, b"k", b"new"), cas_from_previous=True))
    add("replace with the item's CAS", SET_K, frame(GET, b"k"),
        step(store(REPLACE, b"k", b"new"), cas_from_previous=True))
    add("set too large, noop", b"", step(too_large_set(SET, b"k"), TOO_LARGE, noop()))
    add("setq too large, noop", b"", step(too_large_set(SETQ, b"k"), TOO_LARGE, noop()))
    add("set too large unlinks the old value", SET_K,
        step(too_large_set(SET, b"k"), TOO_LARGE, frame(GET, b"k")))
    add("append too large keeps the old value", SET_K,
        step(frame(APPEND, b"k", bodylen=1 + TOO_LARGE), TOO_LARGE, frame(GET, b"k")))
    add("set with a value length over 2 GiB, noop", b"",
        store(SET, b"k", b"", bodylen=0x80000010) + noop())
    # Append and prepend.
    add("append existing, get", SET_K, frame(APPEND, b"k", value=b"de") + frame(GET, b"k"))
    add("prepend existing, get", SET_K, frame(PREPEND, b"k", value=b"xy") + frame(GET, b"k"))
    add("append missing", b"", frame(APPEND, b"k", value=b"de"))
    add("prepend missing", b"", frame(PREPEND, b"k", value=b"de"))
    add("appendq missing, noop", b"", frame(APPENDQ, b"k", value=b"de") + noop())
    add("prependq existing, noop", SET_K, frame(PREPENDQ, b"k", value=b"de") + noop())
    add("append with a CAS that differs", SET_K, frame(APPEND, b"k", value=b"d", cas=0xFFFFFFFF00))
    add("append with the item's CAS", SET_K, frame(GET, b"k"),
        step(frame(APPEND, b"k", value=b"d"), cas_from_previous=True))
    # Delete.
    add("delete hit, get", SET_K, frame(DELETE, b"k") + frame(GET, b"k"))
    add("delete miss", b"", frame(DELETE, b"k"))
    add("deleteq hit, noop", SET_K, frame(DELETEQ, b"k") + noop())
    add("deleteq miss, noop", b"", frame(DELETEQ, b"k") + noop())
    add("delete with a CAS that differs", SET_K, frame(DELETE, b"k", cas=0xFFFFFFFF00))
    add("delete with the item's CAS", SET_K, frame(GET, b"k"),
        step(frame(DELETE, b"k"), cas_from_previous=True))
    # incr and decr.
    add("incr hit, get", SET_N, arith(INCR, b"n", 5) + frame(GET, b"n"))
    add("decr hit", SET_N, arith(DECR, b"n", 3))
    add("decr below zero", SET_N, arith(DECR, b"n", 11))
    add("incr wraps", b"set n 0 0 20\r\n18446744073709551615\r\n", arith(INCR, b"n", 2))
    add("incr miss creates, get", b"", arith(INCR, b"n", 5, initial=7, exptime=0) + frame(GET, b"n"))
    add("decr miss creates", b"", arith(DECR, b"n", 5, initial=3, exptime=100))
    add("incr miss without create", b"", arith(INCR, b"n", 5, initial=7))
    add("incr non-numeric", SET_K, arith(INCR, b"k", 1))
    add("incrq hit, noop", SET_N, arith(INCRQ, b"n", 1) + noop())
    add("incrq creates, noop", b"", arith(INCRQ, b"n", 1, initial=9, exptime=0) + noop())
    add("decrq miss without create, noop", b"", arith(DECRQ, b"n", 1) + noop())
    add("incr with a CAS that differs", SET_N, arith(INCR, b"n", 1, cas=0xFFFFFFFF00))
    add("incr with the item's CAS", SET_N, frame(GET, b"n"),
        step(arith(INCR, b"n", 1), cas_from_previous=True))
    # Touch and get-and-touch.
    add("touch hit", SET_K, touch(TOUCH, b"k", 100))
    add("touch miss", b"", touch(TOUCH, b"k", 100))
    add("gat hit", SET_K, touch(GAT, b"k", 100))
    add("gat miss", b"", touch(GAT, b"k", 100))
    add("gatk hit", SET_K, touch(GATK, b"k", 100))
    add("gatk miss", b"", touch(GATK, b"k", 100))
    add("gatq hit and miss, noop", SET_K, touch(GATQ, b"k") + touch(GATQ, b"zz") + noop())
    add("gatkq hit and miss, noop", SET_K, touch(GATKQ, b"k") + touch(GATKQ, b"zz") + noop())
    add("gat with a noop inside its body", b"",
        touch(GAT, b"k", 0, bodylen=1 + 4 + 24) + noop())
    add("touch with a noop inside its body", SET_K,
        touch(TOUCH, b"k", 0, bodylen=1 + 4 + 24) + noop())
    # Flush.
    add("flush, get", SET_K, frame(FLUSH), frame(GET, b"k"))
    add("flushq, noop, get", SET_K, frame(FLUSHQ) + noop() + frame(GET, b"k"))
    add("flush with a delay, get", SET_K, frame(FLUSH, extras=struct.pack(">I", 60)) + frame(GET, b"k"))
    add("flush with a zero delay, get", SET_K, frame(FLUSH, extras=struct.pack(">I", 0)) + frame(GET, b"k"))
    add("flush with a key", b"", frame(FLUSH, b"k"))
    add("flush with 8 bytes of extras", b"", frame(FLUSH, extras=b"\0" * 8))
    add("flush with a value", b"", frame(FLUSH, extras=b"\0" * 4, value=b"xxxx"))
    # noop, version, quit.
    add("noop", b"", noop())
    add("version", b"", frame(VERSION), compare="Version")
    add("version with a key", b"", frame(VERSION, b"k"))
    add("noop with extras", b"", frame(NOOP, extras=b"\0" * 4))
    add("quit", b"", frame(QUIT))
    add("quit, noop", b"", frame(QUIT) + noop())
    add("quitq", b"", frame(QUITQ))
    add("quit with a key", b"", frame(QUIT, b"k"))
    # Statistics.
    add("stat", SET_K, frame(STAT), compare="StatNames")
    add("stat settings", b"", frame(STAT, b"settings"), compare="StatNames")
    add("stat items", SET_K, frame(STAT, b"items"), compare="StatNames")
    add("stat slabs", SET_K, frame(STAT, b"slabs"), compare="StatNames")
    add("stat sizes", SET_K, frame(STAT, b"sizes"), compare="StatNames")
    add("stat reset", b"", frame(STAT, b"reset"))
    add("stat detail on, off", b"", frame(STAT, b"detail on") + frame(STAT, b"detail off"))
    add("stat detail dump", b"", frame(STAT, b"detail dump"), compare="StatNames")
    add("stat detail bogus", b"", frame(STAT, b"detail bogus"))
    add("stat bogus", b"", frame(STAT, b"bogus"))
    add("stat conns", b"", frame(STAT, b"conns"))
    add("stat with extras", b"", frame(STAT, extras=b"\0" * 4))
    add("stat with a noop inside its body", b"",
        frame(STAT, b"reset", bodylen=5 + 24) + noop())
    # Verbosity: memcached 1.6.18 no longer serves it.
    add("verbosity", b"", frame(VERBOSITY, extras=struct.pack(">I", 1)))
    add("verbosity, 4 bytes, noop", b"", frame(VERBOSITY, extras=struct.pack(">I", 1)) + b"JUNK" + noop())
    add("verbosity, noop", b"", frame(VERBOSITY, extras=struct.pack(">I", 1)) + noop())
    # SASL, on a server without -S.
    add("sasl list mechs", b"", frame(SASL_LIST))
    add("sasl auth, noop", b"", frame(SASL_AUTH, b"PLAIN", value=b"\0user\0pass") + noop())
    add("sasl step, noop", b"", frame(SASL_STEP, b"PLAIN", value=b"more") + noop())
    add("sasl auth without a mechanism", b"", frame(SASL_AUTH, value=b"x"))
    add("sasl list mechs with a key", b"", frame(SASL_LIST, b"k"))
    # Unknown opcodes.
    add("unknown opcode", b"", frame(0x50))
    add("unknown opcode with a key, 3 bytes, noop", b"", frame(0x50, b"abc") + b"XYZ" + noop())
    add("range opcode", b"", frame(0x30, b"k"))
    add("unknown opcode with a body over 2 GiB, noop", b"", frame(0x50, bodylen=0x80000000) + noop())
    # Malformed headers.
    add("bad magic after a noop", b"", noop() + frame(NOOP, magic=0x81))
    add("zero magic after a noop", b"", noop() + frame(GET, b"k", magic=0x00))
    add("text after binary", b"", noop() + b"get aaaaaaaaaaaaaaaaaa\r\n")
    add("get of a 251-byte key", b"", frame(GET, b"k" * 251))
    add("set of a 251-byte key", b"", store(SET, b"k" * 251, b"v"))
    add("unknown opcode with a 251-byte key", b"", frame(0x50, b"k" * 251))
    add("get with extras", b"", frame(GET, b"k", extras=b"\0" * 4))
    add("get with a value", b"", frame(GET, b"k", value=b"v"))
    add("get without a key", b"", frame(GET))
    add("getk without a key", b"", frame(GETK))
    add("set with 4 bytes of extras", b"", frame(SET, b"k", extras=b"\0" * 4, value=b"v"))
    add("set without a key", b"", store(SET, b"", b"v"))
    add("add without extras", b"", frame(ADD, b"k", value=b"v"))
    add("delete with extras", b"", frame(DELETE, b"k", extras=b"\0" * 4))
    add("delete with a value", b"", frame(DELETE, b"k", value=b"v"))
    add("delete without a key", b"", frame(DELETE))
    add("incr with 8 bytes of extras", b"", frame(INCR, b"n", extras=b"\0" * 8))
    add("incr without a key", b"", frame(INCR, extras=b"\0" * 20))
    add("incr with a value", b"", frame(INCR, b"n", extras=b"\0" * 20, value=b"v"))
    add("touch without extras", b"", frame(TOUCH, b"k"))
    add("touch without a key", b"", frame(TOUCH, extras=b"\0" * 4))
    add("gat without extras", b"", frame(GAT, b"k"))
    add("append with extras", b"", frame(APPEND, b"k", extras=b"\0" * 4, value=b"v"))
    add("append without a key", b"", frame(APPEND, value=b"v"))
    add("body shorter than the key", b"", frame(GET, b"kkkkk", bodylen=3))
    add("body shorter than extras and key", b"", store(SET, b"kk", b"", bodylen=9))
    add("half a header", b"", frame(GET, b"k")[:12])
    add("header without its key", b"", frame(GET, b"kkkk")[:26])
    return e


def udp_exchanges():
    """(name, setup, [datagrams]) for every UDP exchange."""
    def dg(payload, rid=0x0107, seq=0, total=1):
        return struct.pack(">HHHH", rid, seq, total, 0) + payload

    big = b"set big 0 0 3000\r\n" + b"v" * 3000 + b"\r\n"
    big2 = b"set big2 3 0 1500\r\n" + b"w" * 1500 + b"\r\n"
    return [
        ("text version", b"", [dg(b"version\r\n")]),
        ("text get miss", b"", [dg(b"get a\r\n")]),
        ("text set, then get", b"", [dg(b"set a 0 0 1\r\nx\r\n"), dg(b"get a\r\n", rid=2)]),
        ("text get of three misses", b"", [dg(b"get a b c\r\n")]),
        ("text get of hit, miss, hit", b"set a 0 0 1\r\nx\r\n", [dg(b"get a b a\r\n")]),
        ("text get of a 3000-byte value", big, [dg(b"get big\r\n")]),
        ("text get of two long values", big + big2, [dg(b"get big big2\r\n")]),
        ("text two commands in one datagram", b"", [dg(b"version\r\nget a\r\n")]),
        ("text noreply set, then get", b"", [dg(b"set a 0 0 1 noreply\r\nx\r\nget a\r\n")]),
        ("text get, then an incomplete command", b"", [dg(b"get a\r\nget b")]),
        ("text total 2 is dropped", b"", [dg(b"version\r\n", total=2)]),
        ("text total 0 is dropped", b"", [dg(b"version\r\n", total=0)]),
        ("text sequence 5 is served", b"", [dg(b"version\r\n", seq=5)]),
        ("text request id echoed", b"", [dg(b"version\r\n", rid=0xABCD)]),
        ("8-byte datagram is dropped", b"", [dg(b"")]),
        ("binary noop", b"", [dg(noop())]),
        ("binary get miss", b"", [dg(frame(GET, b"k"))]),
        ("binary getk hit", SET_K, [dg(frame(GETK, b"k"))]),
        ("binary set, then get", b"", [dg(store(SET, b"k", b"v")), dg(frame(GET, b"k"), rid=2)]),
        ("binary getq miss, noop", b"", [dg(frame(GETQ, b"k") + noop())]),
        ("binary setq alone", b"", [dg(store(SETQ, b"k", b"v"))]),
        ("binary getq hit, getq miss, noop", SET_K, [dg(frame(GETQ, b"k") + frame(GETQ, b"zz") + noop())]),
        ("binary get miss, getq miss, get miss", b"",
         [dg(frame(GET, b"a") + frame(GETQ, b"b") + frame(GET, b"c"))]),
        ("binary get of a 3000-byte value", big, [dg(frame(GET, b"big"))]),
        ("binary noop, bad magic", b"", [dg(noop() + frame(NOOP, magic=0x81))]),
        ("binary get hit, bad magic", SET_K, [dg(frame(GET, b"k") + frame(NOOP, magic=0x81))]),
        ("binary get hit, key too long", SET_K, [dg(frame(GET, b"k") + frame(GET, b"k" * 251))]),
        ("binary unknown opcode, noop", b"", [dg(frame(0x50, b"zz") + noop())]),
        ("binary quit, noop", b"", [dg(frame(QUIT) + noop())]),
        ("binary version", b"", [dg(frame(VERSION))]),
        ("text, then binary", b"", [dg(b"version\r\n"), dg(noop(), rid=2)]),
    ]


# ------------------------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_memcached():
    port = free_port()
    child = subprocess.Popen(["memcached", "-u", "nobody", "-l", "127.0.0.1", "-p", str(port),
                              "-U", str(port), "-t", "2"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(b"version\r\n")
                version = s.recv(100)
            if version != b"VERSION 1.6.18\r\n":
                sys.exit(f"memcached says {version!r}; these goldens are of 1.6.18")
            return child, port
        except ConnectionRefusedError:
            time.sleep(0.05)
    sys.exit("memcached did not start")


def read_until_idle(sock):
    out, closed = b"", False
    sock.settimeout(IDLE)
    while True:
        try:
            data = sock.recv(1 << 20)
        except socket.timeout:
            break
        except ConnectionResetError:
            closed = True
            break
        if not data:
            closed = True
            break
        out += data
    return out, closed


def prepare(port, setup):
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"flush_all\r\n" + setup)
        read_until_idle(s)


def first_response_cas(response):
    return struct.unpack(">Q", response[16:24])[0] if len(response) >= 24 else 0


def run_tcp(port, setup, steps):
    prepare(port, setup)
    results = []
    with socket.create_connection(("127.0.0.1", port)) as s:
        previous = b""
        for st in steps:
            request = st["request"]
            if st["cas_from_previous"]:
                request = request[:16] + struct.pack(">Q", first_response_cas(previous)) + request[24:]
            s.sendall(request + b"v" * st["filler"] + st["tail"])
            response, closed = read_until_idle(s)
            results.append((response, closed))
            previous = response
            if closed:
                break
    return results


def run_udp(port, setup, datagrams):
    prepare(port, setup)
    replies = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(IDLE)
        for datagram in datagrams:
            s.sendto(datagram, ("127.0.0.1", port))
            got = []
            while True:
                try:
                    got.append(s.recv(65536))
                except socket.timeout:
                    break
            replies.append(got)
    return replies


def literal(data):
    out = []
    for byte in data:
        ch = chr(byte)
        if ch == "\\" or ch == '"':
            out.append("\\" + ch)
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\n":
            out.append("\\n")
        elif 0x20 <= byte < 0x7F:
            out.append(ch)
        else:
            out.append("\\x%02x" % byte)
    return 'b"' + "".join(out) + '"'


PREAMBLE = '''// Generated by scripts/capture-memcached-binary.py from memcached 1.6.18 (Debian build, default
// settings: -B auto, -I 1m, no -S, -U on): do not edit by hand. Self-contained so that any
// test may `include!` it.
//
// TCP: every exchange runs on a fresh connection after `flush_all` and its `setup` (text
// commands, replies dropped) on another one. Each step's request is `request`, then `filler`
// bytes of `v`, then `request_tail`; with `cas_from_previous` its first frame's CAS field
// (bytes 16..24) is first set to the CAS of the previous step's first response. `response` is
// everything memcached sent until it closed (`closed`) or went quiet for 0.25 s. Opaques are
// distinct per request frame and echoed; CAS values in response headers (bytes 16..24 of each
// frame) differ between servers, so compare them masked. `compare` says how far the bytes can
// be compared: `Exact` (CAS masked), `Version` (the version text is the server's own),
// `StatNames` (stat values vary: compare the sequence of names).
//
// UDP: each exchange uses a fresh socket; `datagrams` are sent one at a time (header
// included) and `replies[i]` lists the datagrams that came back after `datagrams[i]`.

#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    Exact,
    Version,
    StatNames,
}

#[allow(dead_code)]
pub struct BinaryStep {
    pub request: &'static [u8],
    pub filler: usize,
    pub request_tail: &'static [u8],
    pub cas_from_previous: bool,
    pub response: &'static [u8],
    pub closed: bool,
}

#[allow(dead_code)]
impl BinaryStep {
    /// The bytes sent, filler and tail included (before any `cas_from_previous` patch).
    pub fn request_bytes(&self) -> Vec<u8> {
        let mut bytes = self.request.to_vec();
        bytes.resize(bytes.len() + self.filler, b'v');
        bytes.extend_from_slice(self.request_tail);
        bytes
    }
}

#[allow(dead_code)]
pub struct BinaryExchange {
    pub name: &'static str,
    pub setup: &'static [u8],
    pub steps: &'static [BinaryStep],
    pub compare: Compare,
}

#[allow(dead_code)]
pub struct UdpExchange {
    pub name: &'static str,
    pub setup: &'static [u8],
    pub datagrams: &'static [&'static [u8]],
    pub replies: &'static [&'static [&'static [u8]]],
}
'''


def render(tcp, udp):
    lines = [PREAMBLE, "#[allow(dead_code)]", "pub const BINARY_EXCHANGES: &[BinaryExchange] = &["]
    for (name, setup, steps, compare), results in tcp:
        lines.append("    BinaryExchange {")
        lines.append(f"        name: {json.dumps(name)},")
        lines.append(f"        setup: {literal(setup)},")
        lines.append(f"        compare: Compare::{compare},")
        lines.append("        steps: &[")
        for st, (response, closed) in zip(steps, results):
            lines.append("            BinaryStep {")
            lines.append(f"                request: {literal(st['request'])},")
            lines.append(f"                filler: {st['filler']},")
            lines.append(f"                request_tail: {literal(st['tail'])},")
            lines.append(f"                cas_from_previous: {str(st['cas_from_previous']).lower()},")
            lines.append(f"                response: {literal(response)},")
            lines.append(f"                closed: {str(closed).lower()},")
            lines.append("            },")
        lines.append("        ],")
        lines.append("    },")
    lines.append("];")
    lines.append("")
    lines.append("#[allow(dead_code)]")
    lines.append("pub const UDP_EXCHANGES: &[UdpExchange] = &[")
    for (name, setup, datagrams), replies in udp:
        lines.append("    UdpExchange {")
        lines.append(f"        name: {json.dumps(name)},")
        lines.append(f"        setup: {literal(setup)},")
        lines.append("        datagrams: &[" + ", ".join(literal(d) for d in datagrams) + "],")
        lines.append("        replies: &[")
        for got in replies:
            lines.append("            &[" + ", ".join(literal(d) for d in got) + "],")
        lines.append("        ],")
        lines.append("    },")
    lines.append("];")
    return "\n".join(lines) + "\n"


def main():
    child, port = start_memcached()
    try:
        tcp = [(x, run_tcp(port, x[1], x[2])) for x in exchanges()]
        udp = [(x, run_udp(port, x[1], x[2])) for x in udp_exchanges()]
    finally:
        child.terminate()
        child.wait()
    with open(OUTPUT, "w") as f:
        f.write(render(tcp, udp))
    print(f"wrote {len(tcp)} TCP and {len(udp)} UDP exchanges to {os.path.relpath(OUTPUT)}")


if __name__ == "__main__":
    main()
