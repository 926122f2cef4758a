"""redis-py over tcpdive against a real redis-server: the article's connection-less loop leaves
TIME_WAIT sockets on tcpdive's side (it closes first); a connection pool leaves none."""

from __future__ import annotations

import pytest

from .conftest import needs_real, start_redis, unique_port, wait_until

pytestmark = needs_real

N = 40


def test_redis_connectionless_loop_vs_pool(stack, tmp_path):
    redis = pytest.importorskip("redis", reason="redis-py is in the test extras")
    port = unique_port()
    start_redis(stack, tmp_path, port)
    host = stack.kernel_addr
    with stack.patch():
        # connection-less: a new connection per command, closed by the client
        for i in range(N):
            r = redis.Redis(host=host, port=port, socket_timeout=10)
            assert r.set(f"k{i}", i)
            r.close()
        # the last connection reaches TIME_WAIT only when redis's FIN has crossed the TUN
        # device: poll (this was the flake: 39 of 40 under load), never more than N
        tw = wait_until(lambda: stack.netstat("TIME_WAIT", header=False),
                        lambda rows: len(rows) >= N, what="tcpdive TIME_WAIT sockets")
        assert len(tw) == N, "\n".join(stack.netstat())
        assert all(f"{host}:{port}" in ln and "timewait (" in ln for ln in tw)
        # the kernel (redis-server) side has no TIME_WAIT: it closed second (LAST-ACK ->
        # CLOSED once our last ACK lands)
        wait_until(lambda: [x for x in stack.ns.ss("-tan") if x["state"] in
                            ("CLOSE-WAIT", "LAST-ACK")], lambda v: not v,
                   what="kernel sockets still closing")
        assert not [x for x in stack.ns.ss("-tan") if x["state"] == "TIME-WAIT"]

        # pool: one connection reused for every command
        pool = redis.ConnectionPool(host=host, port=port, socket_timeout=10)
        r = redis.Redis(connection_pool=pool)
        try:
            for i in range(N):
                assert int(r.get(f"k{i}")) == i
                assert r.incr("counter") == i + 1
            states = stack.states()
            est = [s for s in states if s[0] == "ESTABLISHED" and s[2].endswith(f":{port}")]
            assert len(est) == 1
            assert len([s for s in states if s[0] == "TIME_WAIT"]) == N     # no new ones
            kest = [x for x in stack.ns.ss("-tan") if x["state"] == "ESTAB"]
            assert len(kest) == 1 and kest[0]["peer"] == est[0][1]
        finally:
            pool.disconnect()
