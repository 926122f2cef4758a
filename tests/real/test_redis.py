"""redis-py over tcpdive against a real redis-server: the article's connection-less loop leaves
TIME_WAIT sockets on tcpdive's side (it closes first); a connection pool leaves none."""

from __future__ import annotations

import pytest

from .conftest import needs_real, start_redis

pytestmark = needs_real

N = 40


def test_redis_connectionless_loop_vs_pool(stack, tmp_path):
    redis = pytest.importorskip("redis", reason="redis-py is in the test extras")
    start_redis(stack, tmp_path)
    host = stack.kernel_addr
    with stack.patch():
        # connection-less: a new connection per command, closed by the client
        for i in range(N):
            r = redis.Redis(host=host, port=6379, socket_timeout=10)
            assert r.set(f"k{i}", i)
            r.close()
        tw = stack.netstat("TIME_WAIT", header=False)
        assert len(tw) == N, "\n".join(stack.netstat())
        assert all("10.77.0.1:6379" in ln and "timewait (" in ln for ln in tw)
        # the kernel (redis-server) side has no TIME_WAIT: it closed second
        assert not [x for x in stack.ns.ss("-tan") if x["state"] == "TIME-WAIT"]

        # pool: one connection reused for every command
        pool = redis.ConnectionPool(host=host, port=6379, socket_timeout=10)
        r = redis.Redis(connection_pool=pool)
        for i in range(N):
            assert int(r.get(f"k{i}")) == i
            assert r.incr("counter") == i + 1
        states = stack.states()
        est = [s for s in states if s[0] == "ESTABLISHED" and s[2].endswith(":6379")]
        assert len(est) == 1
        assert len([s for s in states if s[0] == "TIME_WAIT"]) == N     # no new ones
        kest = [x for x in stack.ns.ss("-tan") if x["state"] == "ESTAB"]
        assert len(kest) == 1 and kest[0]["peer"] == est[0][1]
        pool.disconnect()
