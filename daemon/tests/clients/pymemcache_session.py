"""A real client library against ferrocached: pymemcache (Debian python3-pymemcache) runs a
set/get/gets/cas/incr/decr/delete/touch/get_many session. Started by daemon/tests/clients.rs
with the server's host and port; exits non-zero on the first surprise."""

import sys

from pymemcache.client.base import Client

host, port = sys.argv[1], int(sys.argv[2])
c = Client((host, port), connect_timeout=5, timeout=5, default_noreply=False)

assert c.version().startswith(b"1.6"), c.version()
assert c.set("a", b"1") is True
assert c.get("a") == b"1"
value, cas = c.gets("a")
assert value == b"1", value
assert c.cas("a", b"2", cas) is True
assert c.cas("a", b"3", cas) is False, "a stale CAS must fail"
assert c.cas("missing", b"3", cas) is None
assert c.get("a") == b"2"

assert c.set("n", b"10", expire=100, flags=3) is True
assert c.incr("n", 5) == 15
assert c.decr("n", 20) == 0
assert c.incr("missing", 1) is None
assert c.decr("missing", 1) is None
assert c.touch("n", 100) is True
assert c.touch("missing", 100) is False
assert c.add("n", b"x") is False
assert c.add("fresh", b"x") is True
assert c.replace("n", b"7") is True
assert c.replace("nothing", b"7") is False
assert c.append("n", b"7") is True
assert c.prepend("n", b"1") is True
assert c.get("n") == b"177"

assert c.set_many({"k1": b"v1", "k2": b"v2", "k3": b"v3"}) == []
assert c.get_many(["k1", "k2", "k3", "nope"]) == {"k1": b"v1", "k2": b"v2", "k3": b"v3"}
many = c.gets_many(["k1", "k2"])
assert set(many) == {"k1", "k2"} and many["k1"][0] == b"v1", many
assert c.delete("k1") is True
assert c.delete("k1") is False
assert c.get("k1") is None
assert c.delete_many(["k2", "k3"]) is True
assert c.get_many(["k1", "k2", "k3"]) == {}

big = b"x" * 500_000
assert c.set("big", big) is True
assert c.get("big") == big

stats = c.stats()
names = {k.decode() if isinstance(k, bytes) else k for k in stats}
assert {"curr_items", "get_hits", "cmd_get", "pid"} <= names, names
assert c.flush_all() is True
assert c.get("a") is None
c.quit()
print("pymemcache session passed")
