"""A real binary-protocol client against ferrocached: pylibmc (libmemcached, Debian
python3-pylibmc) with behaviors={"binary": True} runs a set/get/multi-get/cas/incr/decr/
delete/touch/flush session. Started by daemon/tests/clients.rs with the server's host and
port; exits non-zero on the first surprise."""

import sys

import pylibmc

host, port = sys.argv[1], int(sys.argv[2])
mc = pylibmc.Client([f"{host}:{port}"], binary=True, behaviors={"cas": True, "tcp_nodelay": True})

assert mc.set("a", b"1")
assert mc.get("a") == b"1"
assert mc.get("missing") is None
assert mc.set_multi({"m1": b"x", "m2": b"y", "m3": 3}) == []
assert mc.get_multi(["m1", "m2", "m3", "nope"]) == {"m1": b"x", "m2": b"y", "m3": 3}

value, cas = mc.gets("a")
assert value == b"1", value
assert mc.cas("a", b"2", cas)
assert not mc.cas("a", b"3", cas), "a stale CAS must fail"
assert mc.get("a") == b"2"

assert mc.set("n", 10)
assert mc.incr("n", 5) == 15
assert mc.decr("n", 20) == 0
try:
    mc.incr("missing", 1)
except pylibmc.NotFound:
    pass
else:
    raise AssertionError("incr of a missing key must raise NotFound")

assert mc.add("fresh", b"x")
assert not mc.add("fresh", b"y")
assert mc.replace("fresh", b"z")


def raises_not_found(call, *args):
    try:
        call(*args)
    except pylibmc.NotFound:
        return True
    return False


# Over the binary protocol a replace of a missing key is "not found", as memcached answers.
assert raises_not_found(mc.replace, "absent", b"z")
assert mc.append("fresh", b"!")
assert mc.prepend("fresh", b"<")
assert mc.get("fresh") == b"<z!"

assert mc.touch("fresh", 100)
assert not mc.touch("absent", 100)

assert mc.delete("fresh")
assert not mc.delete("fresh")
assert mc.get("fresh") is None

stats = mc.get_stats()
assert stats and int(stats[0][1]["curr_items"]) > 0, stats

assert mc.flush_all()
assert mc.get("a") is None
print("pylibmc binary session passed")
