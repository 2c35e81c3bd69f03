"""pymemcache over TLS: an ssl.SSLContext that verifies the test CA (and the server's name),
then set, get and multi-get, as an application would use it.

Usage: pymemcache_tls.py HOST PORT CA_FILE
"""
import ssl
import sys

from pymemcache.client.base import Client

host, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
context = ssl.create_default_context(cafile=ca)
context.check_hostname = True
client = Client((host, port), tls_context=context, connect_timeout=5, timeout=5)
client.set("greeting", "hello over tls")
assert client.get("greeting") == b"hello over tls", client.get("greeting")
values = {f"k{i}": f"value {i}" * (i + 1) for i in range(50)}
client.set_many(values)
got = client.get_many(list(values) + ["missing"])
assert len(got) == 50, len(got)
assert all(got[k] == v.encode() for k, v in values.items())
big = "x" * 200_000
client.set("big", big)
assert client.get("big") == big.encode()
assert client.incr("n", 1) is None
client.set("n", "41")
assert client.incr("n", 1) == 42
client.close()
print("pymemcache tls session passed")
