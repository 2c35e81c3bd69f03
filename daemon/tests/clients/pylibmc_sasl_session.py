"""A real SASL client against ferrocached -S: pylibmc (libmemcached, Debian python3-pylibmc)
with binary=True (pylibmc 1.6 takes it as an argument: behaviors={"binary": True} is refused
as an unknown behavior) and username=/password= logs in with PLAIN and runs set/get;
the same with a wrong password must be refused. Started by daemon/tests/sasl.rs with the
server's host and port; exits non-zero on the first surprise."""

import sys

import pylibmc

host, port = sys.argv[1], int(sys.argv[2])
servers = [f"{host}:{port}"]

mc = pylibmc.Client(servers, binary=True, username="alice", password="secret")
assert mc.set("sasl-key", b"hello")
assert mc.get("sasl-key") == b"hello"
assert mc.set_multi({"s1": b"x", "s2": b"y"}) == []
assert mc.get_multi(["s1", "s2", "nope"]) == {"s1": b"x", "s2": b"y"}

wrong = pylibmc.Client(servers, binary=True, username="alice", password="wrong")
try:
    wrong.get("sasl-key")
except pylibmc.Error:
    pass
else:
    raise AssertionError("a wrong password must be refused")

print("pylibmc sasl session passed")
